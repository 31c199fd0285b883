// Model references: `hf:<repo>[@<revision>][#<file or glob>]` and `civitai:<model>[@<version>]`.
#pragma once

#include <string>
#include <string_view>

namespace df::download {

enum class ModelSource { kHuggingFace, kCivitai };

struct ModelRef {
  ModelSource source = ModelSource::kHuggingFace;
  // Hugging Face: the repo id ("org/name"); CivitAI: the model's numeric id or its slug.
  std::string model;
  // Hugging Face: a branch, tag or commit ("" = main); CivitAI: a version id ("" = the latest).
  std::string revision;
  // Hugging Face only: one file path or a glob ("" = the pipeline model_index.json describes).
  std::string selector;
};

// True when `text` starts like a reference (`hf:` or `civitai:`), as opposed to a model id.
bool looks_like_model_ref(std::string_view text);

// Throws Error(kInvalidArgument) saying what is wrong and what a reference looks like.
ModelRef parse_model_ref(std::string_view text);

// The reference as text; a Hugging Face reference always names its revision (main by default).
std::string format_model_ref(const ModelRef& ref);

// Whether an installed model that came from `installed` (resolved to `installed_revision`) is what
// `asked` names: same source, model and selector, and `asked` names no revision, or the same one,
// or the resolved one.
bool model_ref_matches(const ModelRef& asked, const ModelRef& installed,
                       const std::string& installed_revision);

}  // namespace df::download

// The DiT families' text sides as CLIPLoader / DualCLIPLoader / TripleCLIPLoader load them.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <vector>

#include "engine/text/prompt_encoder.h"

namespace df::engine {

// The DiT family whose text side a loader `type` with `file_count` files makes ("lumina2" with
// one file: Z-Image's Qwen3; "flux" with two: FLUX.1's CLIP-L and T5-XXL in either order);
// nullopt for the SD types, which load_text_conditioner loads.
std::optional<Family> dit_text_family(const std::string& type, size_t file_count);

// The PromptEncoder of the text encoder files `paths` of loader `type` (one dit_text_family
// knows) on `device` in `dtype` (resolve_placement's names). Type "sd3" takes one to three
// files (TripleCLIPLoader's type), CLIPs with their vocabulary from `clip_vocab_dir`. Tokenizers:
// a text encoder file
// `NAME.safetensors` carries none, so its tokenizer is `NAME.tokenizer/tokenizer.json` beside it, else
// `tokenizer.json` in request.tokenizer_dir. Throws Error(kModelNotFound) naming both places when
// neither exists, and what the family's loaders throw. T5 files find their tokenizer with
// t5_tokenizer_beside, CLIP files their vocabulary in `NAME.tokenizer/` beside them or
// `clip_vocab_dir` (load_clip_text_encoder).
std::shared_ptr<const PromptEncoder> load_prompt_encoder(const std::vector<std::string>& paths,
                                                         const std::string& type,
                                                         const std::string& device,
                                                         const std::string& dtype,
                                                         const std::string& tokenizer_dir,
                                                         const std::string& clip_vocab_dir = "");

// Where the tokenizer.json of the text encoder file `weights_path` is (see load_prompt_encoder).
std::string tokenizer_beside(const std::string& weights_path, const std::string& tokenizer_dir);

// The T5 tokenizer folder of the T5 file `weights_path`: `NAME.tokenizer/` beside it (holding
// tokenizer.json or spiece.model), else T5's tokenizer installed beside the executables
// (<bin>/../share/dreamforge/t5). Throws Error(kModelNotFound) naming both places.
std::string t5_tokenizer_beside(const std::string& weights_path);

}  // namespace df::engine

// Sources and token redaction from the environment.
#include "download/configured_sources.h"

#include <cstdlib>

#include "core/error.h"
#include "download/civitai.h"
#include "download/hugging_face.h"

namespace df::download {
namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != 0 ? value : fallback;
}

}  // namespace

std::unique_ptr<Source> configured_source(const ModelRef& ref) {
  if (ref.source == ModelSource::kCivitai) {
    return std::make_unique<Civitai>(env_or("DREAMFORGE_CIVITAI_URL", "https://civitai.com"),
                                     env_or("CIVITAI_TOKEN", ""));
  }
  return std::make_unique<HuggingFace>(env_or("HF_ENDPOINT", "https://huggingface.co"),
                                       env_or("HF_TOKEN", ""));
}

Redactor token_redactor() { return Redactor({env_or("HF_TOKEN", ""), env_or("CIVITAI_TOKEN", "")}); }

Error without_tokens(const Error& error) {
  const Redactor redact = token_redactor();
  auto details = nlohmann::json::parse(redact(error.details().dump()), nullptr, false);
  return Error(error.code(), redact(error.what()),
               details.is_discarded() ? nlohmann::json::object() : details);
}

}  // namespace df::download

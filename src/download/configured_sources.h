// The sources as the environment configures them: Hugging Face (HF_ENDPOINT, HF_TOKEN) and
// CivitAI (DREAMFORGE_CIVITAI_URL, CIVITAI_TOKEN), and the redactor that keeps their tokens out
// of messages.
#pragma once

#include <memory>

#include "download/model_ref.h"
#include "download/redaction.h"
#include "download/source.h"

namespace df::download {

// The source `ref` names, with its endpoint and token from the environment.
std::unique_ptr<Source> configured_source(const ModelRef& ref);

// Replaces HF_TOKEN's and CIVITAI_TOKEN's values wherever they appear.
Redactor token_redactor();

// `error` with the tokens taken out of its message and details.
Error without_tokens(const Error& error);

}  // namespace df::download

// FLUX.1 prompts to conditionings: T5-XXL context and CLIP-L pooled vector, as ComfyUI's FluxClipModel.
#include "engine/family/flux/flux_prompt_encoder.h"

#include "engine/checkpoint_bundle.h"
#include "engine/tensor_file.h"
#include "engine/text/clip_prompt_encoding.h"

namespace df::engine::flux {

FluxPromptEncoder::FluxPromptEncoder(TextEncoder clip_l, T5Tokenizer t5_tokenizer, T5Encoder t5)
    : clip_l_(std::move(clip_l)), t5_tokenizer_(std::move(t5_tokenizer)), t5_(std::move(t5)) {}

Conditioning FluxPromptEncoder::encode(const std::string& prompt) const {
  return encode_parts(prompt, prompt);
}

Conditioning FluxPromptEncoder::encode_parts(const std::string& clip_l_text,
                                             const std::string& t5xxl_text) const {
  at::InferenceMode guard;
  Conditioning cond;
  cond.context =
      encode_weighted(t5_, t5_weighted_tokens(t5_tokenizer_, t5xxl_text, kFluxT5MinLength));
  cond.pooled = encode_clip_prompt(clip_l_, clip_l_text).pooled;
  return cond;
}

bool holds_t5_encoder(const std::string& path) {
  return TensorFile::open(path).find("encoder.final_layer_norm.weight") != nullptr;
}

std::shared_ptr<const PromptEncoder> load_flux_prompt_encoder(const std::string& clip_l_path,
                                                              const std::string& t5_path,
                                                              const std::string& t5_tokenizer_path,
                                                              const std::string& clip_vocab_dir,
                                                              const std::string& device,
                                                              const std::string& dtype) {
  TextEncoder clip_l = load_clip_text_encoder(clip_l_path, clip_vocab_dir, device, dtype);
  const RuntimePlacement placement = resolve_placement(device, dtype, Family::kFlux);
  const T5Encoder loaded = load_t5_encoder(t5_path, placement.dtype);
  Weights t5_weights = loaded.weights();
  t5_weights.to(placement.dtype, placement.device);
  return std::make_shared<const FluxPromptEncoder>(std::move(clip_l),
                                                   T5Tokenizer::from_file(t5_tokenizer_path),
                                                   T5Encoder(loaded.config(), t5_weights));
}

}  // namespace df::engine::flux

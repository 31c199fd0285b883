// Tiny random-weight FLUX.1, SD3.5 and Z-Image models as diffusers pipeline folders (torch-free).
#pragma once

#include <cstdint>
#include <string>

namespace df::engine {

// Writes the tiny split files of `family` ("flux", "flux-schnell", "sd3" or "zimage"; see
// write_tiny_flux_files / write_tiny_sd3_files / write_tiny_zimage_files) drawn from `seed` as the
// diffusers pipeline folder `dir` that DiffusionPipeline.from_pretrained loads: model_index.json
// (FluxPipeline, StableDiffusion3Pipeline or ZImagePipeline), scheduler/ (a
// FlowMatchEulerDiscreteScheduler with the family's shift), transformer/ (diffusers names),
// vae/ (AutoencoderKL, 16 latent channels, the family's scaling and shift factors), and the text
// encoders in transformers layout with their tokenizers: FLUX.1 text_encoder (CLIPTextModel) +
// tokenizer (CLIPTokenizer), text_encoder_2 (T5EncoderModel) + tokenizer_2 (T5TokenizerFast);
// SD3 text_encoder and text_encoder_2 (CLIPTextModelWithProjection; CLIP-L's projection is the
// identity, so its projected pooled output is the pooler output ComfyUI reads) + tokenizer and
// tokenizer_2, text_encoder_3 (T5EncoderModel) + tokenizer_3; Z-Image text_encoder (Qwen3Model) +
// tokenizer (Qwen2Tokenizer). The same weights as the split files of the same seed. A `dir`
// holding an earlier test model is replaced; any other non-empty `dir` is refused with
// Error(kInvalidArgument). Error(kUnsupported) for another family, kIo when writing fails.
// Returns `dir`.
std::string write_tiny_dit_pipeline(const std::string& dir, const std::string& family,
                                    uint64_t seed);

}  // namespace df::engine

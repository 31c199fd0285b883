// CheckpointLoaderSimple on the DiT families' diffusers pipeline folders (FluxPipeline,
// StableDiffusion3Pipeline, ZImagePipeline).
#pragma once

#include <optional>
#include <string>

#include "engine/checkpoint_bundle.h"

namespace df::engine {

// The DiT family of a diffusers pipeline folder: `path` is a directory with model_index.json and
// a transformer/ whose config.json names a FLUX.1, SD3 or Z-Image transformer; nullopt for
// anything else (a file, an SD pipeline folder).
std::optional<Family> dit_pipeline_family(const std::string& path);

// The bundle of a DiT pipeline folder (dit_pipeline_family's): the diffusion model from
// transformer/ (load_dit_model; sharded weights included), the VAE from
// vae/diffusion_pytorch_model.safetensors (float32, as VAELoader) and the family's text side from
// the folder's text encoders and tokenizers: FLUX.1 text_encoder (CLIP-L) + tokenizer/,
// text_encoder_2 (T5) + tokenizer_2/; SD3 text_encoder (CLIP-L, read without its projection as
// ComfyUI does) + tokenizer/, text_encoder_2 (CLIP-G) + tokenizer_2/, text_encoder_3 (T5) +
// tokenizer_3/; Z-Image text_encoder (Qwen3) + tokenizer/tokenizer.json. A text encoder is its
// folder's model.safetensors or the shards model.safetensors.index.json names (T5 and Qwen3; a
// sharded CLIP is refused with Error(kUnsupported)); a missing one is Error(kModelNotFound), a
// broken index Error(kCorruptFile). Otherwise errors as the components' loaders throw them.
CheckpointBundle load_dit_pipeline_bundle(const CheckpointLoadRequest& request, Family family);

}  // namespace df::engine

// CheckpointLoaderSimple on the DiT families' all-in-one single files (SD3 / SD3.5 and FLUX.1: the
// transformer, the VAE and, where the file has them, the text encoders).
#pragma once

#include <optional>

#include "engine/checkpoint_bundle.h"

namespace df::engine {

// The DiT family of a single-file checkpoint this engine loads whole (SD3 / SD3.5 with
// "model.diffusion_model.joint_blocks.*", FLUX.1 dev or schnell with
// "model.diffusion_model.double_blocks.*"); nullopt for anything else (an SD checkpoint, a
// folder, a DiT family without an all-in-one loader yet).
std::optional<Family> dit_checkpoint_family(const std::string& path);

// The bundle of a DiT single file (dit_checkpoint_family's): the diffusion model (load_dit_model),
// the VAE under "first_stage_model." (float32, as VAELoader) and the family's text side in
// bundle.prompt_encoder. SD3: "text_encoders.{clip_l,clip_g,t5xxl}.transformer.*", each optional
// (CLIPs take the vocabulary of request.clip_vocab_dir, T5 the tokenizer t5_tokenizer_beside finds
// for the checkpoint; configs come from shapes, or from the "dreamforge.clip_l_config" /
// "dreamforge.clip_g_config" metadata where present). FLUX.1: the VAE under "vae." and
// "text_encoders.{clip_l,t5xxl}.transformer.*" (both, else none) read the same way. A file without
// text encoders gives a prompt encoder whose encode throws Error(kInvalidArgument) as ComfyUI's
// None CLIP fails.
// Errors as the components' loaders throw them.
CheckpointBundle load_dit_checkpoint_bundle(const CheckpointLoadRequest& request, Family family);

}  // namespace df::engine

// Tiny random-weight FLUX.1 and SD3.5 all-in-one checkpoints (as CheckpointLoaderSimple reads them).
#pragma once

#include <cstdint>
#include <string>

namespace df::engine {

// Writes the tiny split files of `family` ("flux", "flux-schnell" or "sd3"; see
// write_tiny_flux_files / write_tiny_sd3_files) drawn from `seed` as one file at `path`, in the
// layout of ComfyUI's single files (Comfy-Org's flux1-dev-fp8, Stability's sd3.5_medium): the
// transformer under "model.diffusion_model.", the VAE under "vae." (FLUX) or
// "first_stage_model." (SD3), each text encoder under "text_encoders.<clip_l|clip_g|t5xxl>.
// transformer." with its config in the metadata as "dreamforge.<name>_config", and T5's tokenizer
// in the folder <path without extension>.tokenizer beside it. Labelled as a test model (refuses
// to replace another file, as write_test_file). Error(kUnsupported) for another family, kIo when
// writing fails. Returns `path`.
std::string write_tiny_dit_checkpoint(const std::string& path, const std::string& family,
                                      uint64_t seed);

}  // namespace df::engine

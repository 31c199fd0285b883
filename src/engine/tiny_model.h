// Tiny random-weight SD 1.x/2.x/SDXL pipelines in diffusers layout, for tests without downloads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/model_config.h"
#include "engine/safetensors_file.h"
#include "engine/weight_layout.h"

namespace df::engine {

// The component configs of the tiny pipeline of `family` (the parity suite's configs: UNet 32/64
// channels, a 4-block VAE with the real 8x latent scale, 5-layer 32-wide CLIP text encoders over
// the tiny tokenizer's vocabulary).
// Throws Error(kUnsupported) for families without a tiny pipeline (the SDXL refiner).
PipelineConfig tiny_pipeline_config(Family family);

// Writes the tiny pipeline of `family` with weights drawn from `seed` into `dir` in diffusers
// layout (model_index.json, component configs and safetensors, tokenizers, scheduler, README.txt),
// labelled as a test model. The same family and seed always give the same bytes. A directory that
// already holds a tiny model is replaced; any other non-empty `dir` is refused with
// Error(kInvalidArgument). Throws Error(kIo) when the files cannot be written. A UNet with 9
// (inpainting) or 8 (InstructPix2Pix) `unet_in_channels` reads extra inputs (unet_inputs.h).
void write_tiny_model(const std::string& dir, Family family, uint64_t seed,
                      int unet_in_channels = 4);

// write_tiny_model for a pipeline of its own `config` (a tiny pipeline config with changes).
void write_tiny_pipeline(const std::string& dir, const PipelineConfig& config, uint64_t seed);

// F32 tensors for `layout` drawn from `seed` (the same on every platform): matrices, convolutions
// and embeddings ~ N(0, stddev); 1-D ".weight" tensors (norm scales) ones, other 1-D tensors
// (biases) zeros.
std::vector<RawTensor> tiny_random_tensors(const std::vector<TensorShape>& layout, uint64_t seed,
                                           double stddev = 0.02);

// Whether `dir` holds a model labelled as a test model by write_tiny_model.
bool is_tiny_model(const std::string& dir);

}  // namespace df::engine

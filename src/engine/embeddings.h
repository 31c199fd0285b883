// Textual-inversion embeddings: the vectors an embedding file holds for one CLIP text encoder.
#pragma once

#include <string>

#include <ATen/ATen.h>

#include "engine/model_config.h"

namespace df::engine {

// The key an embedding file stores encoder `encoder`'s vectors under, as ComfyUI's tokenizers
// name them: "clip_l" (SD1, SDXL's first), "clip_h" (SD2), "clip_g" (SDXL's second, the refiner).
std::string embedding_key(Family family, size_t encoder);

// The vectors of the embedding file `path` (.safetensors, or A1111's .pt/.bin pickle whose
// {"string_to_param": {"*": tensor}} reads as "string_to_param.*") for the encoder whose `key` is given, picked
// as ComfyUI's load_embed picks them: A1111's "string_to_param.*" tensor, else the tensor named
// `key` (SDXL files hold "clip_l" and "clip_g"), else the first tensor by name ("emb_params" or a
// file's only tensor). Returned as float32 [vectors, width] on the CPU (a 1-D tensor is one
// vector). Throws Error(kUnsafeFormat) for pickles that would run code, Error(kUnsupported) for
// other extensions, Error(kCorruptFile) for a file with no tensors or a non-floating or empty tensor.
at::Tensor load_embedding_vectors(const std::string& path, const std::string& key);

}  // namespace df::engine

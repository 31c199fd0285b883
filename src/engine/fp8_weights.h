// fp8 weights: ComfyUI's scaled fp8 files (dequantised at load), fp8 weight storage (UNETLoader's
// weight_dtype) and the upcast of stored fp8 weights at use.
#pragma once

#include <optional>
#include <string>

#include <ATen/ATen.h>

#include "engine/tensor_file.h"
#include "engine/weights.h"

namespace df::engine {

// ComfyUI's quantized weight files pair a weight "X.weight" stored in fp8 with a float32 scale,
// the real weight being fp8·scale: the older "scaled fp8" files name it "X.scale_weight" (beside
// a "scaled_fp8" marker tensor and maybe an "X.scale_input"), the newer ones "X.weight_scale"
// (beside an "X.comfy_quant" JSON tensor and maybe an "X.input_scale"). Input scales only matter
// to fp8 matrix multiplication, which this engine does not do.

// Whether the file's tensor is one of those companions (marker, scale or quantization config)
// rather than a model tensor: loaders skip them.
bool is_quantization_companion(const TensorFile& file, const std::string& name);

// The scale stored for the weight `name` (either naming), or nullptr when it has none.
const TensorInfo* stored_weight_scale(const TensorFile& file, const std::string& name);

// The real weight fp8·scale as `dtype`, multiplied in float32. Throws Error(kCorruptFile) when
// the scale does not broadcast over the weight and Error(kUnsupported) when the weight is not
// stored in fp8 (another quantization format, such as nvfp4).
at::Tensor dequantize_scaled_weight(const at::Tensor& weight, const at::Tensor& scale,
                                    at::ScalarType dtype, const std::string& name);

// The fp8 dtype of a file's quantized weights (those with a stored scale), nullopt when it has
// none. ComfyUI keeps such a diffusion model in fp8 whatever UNETLoader's weight_dtype says.
std::optional<at::ScalarType> quantized_weights_dtype(const TensorFile& file);

// UNETLoader's weight_dtype: nullopt for "default", float8_e4m3fn for "fp8_e4m3fn" and
// "fp8_e4m3fn_fast" (this engine has no fp8 matrix multiplication: "_fast" stores and computes
// exactly as "fp8_e4m3fn"), float8_e5m2 for "fp8_e5m2". Throws Error(kInvalidArgument) otherwise.
std::optional<at::ScalarType> fp8_weight_storage(const std::string& weight_dtype);

// Stores every floating matrix "*.weight" (2-D: linear layers, the bulk of a transformer's
// bytes) in `fp8_dtype` with a per-tensor float32 scale "*.weight_scale" = max|w| / the dtype's
// largest finite value, so small weights keep fp8's normal range. Other tensors are left alone.
void store_matrix_weights_in_fp8(TensorMap& tensors, at::ScalarType fp8_dtype);

// The weight `name` of a tensor set as float32: fp8 storage times its "<name>_scale" (when the
// set has one), any other tensor converted.
at::Tensor real_weight(const TensorMap& tensors, const std::string& name);

// Replaces the weight `name` by `value` (float32) stored as the old tensor was: fp8 storage
// requantized with a fresh per-tensor scale (kept in the old scale's dtype), others cast.
void replace_weight(TensorMap& tensors, const std::string& name, const at::Tensor& value);

// Every tensor of a Weights set under its full name (sharing the tensors).
TensorMap tensors_of(const Weights& weights);

// The view's tensor `name` ready for math in `dtype`: itself unless stored in fp8, else upcast
// and multiplied by its "<name>_scale" when the view has one.
at::Tensor weight_for_compute(const Weights& w, const std::string& name, at::ScalarType dtype);

}  // namespace df::engine

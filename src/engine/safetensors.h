// Weights files (safetensors, PyTorch checkpoints) as libtorch tensors: loading, converting, saving.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "engine/safetensors_file.h"
#include "engine/tensor_file.h"
#include "engine/weights.h"

namespace df::engine {

// The libtorch dtype of a safetensors dtype name; throws Error(kUnsupported) for names it lacks.
at::ScalarType scalar_type_from_safetensors(const std::string& dtype);
// The safetensors name of a libtorch dtype; throws Error(kUnsupported) for dtypes it cannot store.
std::string safetensors_dtype_name(at::ScalarType type);

// Every tensor of the file as an owned CPU tensor in its stored dtype: load_tensors reads any
// weights file TensorFile::open reads, load_safetensors only safetensors files.
TensorMap load_tensors(const std::string& path);
TensorMap load_safetensors(const std::string& path);

// Writes the tensors (any device, any layout) in name order; see write_safetensors.
void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Maps a stored tensor name to the name it gets, or nullopt to skip the tensor.
using TensorRename = std::function<std::optional<std::string>(const std::string&)>;

// CPU tensors of the tensors that `rename` keeps, under their new names; floating tensors are
// converted to `float_dtype` straight from the mapped bytes, others keep their dtype. Contiguous,
// aligned tensors stored in the dtype they load as are not copied: they view the memory map (read-only) and keep
// it mapped while they live, so loading costs no copy and shares the page cache. fp8 tensors
// (F8_E4M3, F8_E5M2) convert like any other floating tensor; ComfyUI's quantized weights (see
// fp8_weights.h) load dequantized, their scales and markers skipped before `rename` sees them.
// Throws Error(kCorruptFile) when two stored tensors get the same name.
TensorMap load_tensors_as(const TensorFile& file, at::ScalarType float_dtype,
                          const TensorRename& rename);
// load_tensors_as over an open safetensors file.
TensorMap load_safetensors_as(const SafetensorsFile& file, at::ScalarType float_dtype,
                              const TensorRename& rename);

}  // namespace df::engine

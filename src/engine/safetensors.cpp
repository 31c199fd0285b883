// Weights files <-> libtorch tensors: dtype mapping, views and copies of the memory map, saving.
#include "engine/safetensors.h"

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "core/error.h"
#include "engine/fp8_weights.h"

namespace df::engine {
namespace {

const std::vector<std::pair<std::string, at::ScalarType>>& dtype_table() {
  static const std::vector<std::pair<std::string, at::ScalarType>> table = {
      {"F32", at::kFloat},
      {"F16", at::kHalf},
      {"BF16", at::kBFloat16},
      {"F64", at::kDouble},
      {"I64", at::kLong},
      {"I32", at::kInt},
      {"I16", at::kShort},
      {"I8", at::kChar},
      {"U8", at::kByte},
      {"BOOL", at::kBool},
      {"U16", at::kUInt16},
      {"U32", at::kUInt32},
      {"U64", at::kUInt64},
      {"F8_E4M3", at::kFloat8_e4m3fn},
      {"F8_E5M2", at::kFloat8_e5m2}};
  return table;
}

// One stored tensor on the CPU, converted to `float_dtype` when it is floating. With
// `zero_copy`, a contiguous tensor already in the wanted dtype views the memory map instead of
// being copied (read-only: writing to it faults), and keeps the map alive.
at::Tensor read_tensor(const TensorFile& file, const TensorInfo& info,
                       std::optional<at::ScalarType> float_dtype, bool zero_copy) {
  const at::ScalarType stored = scalar_type_from_safetensors(info.dtype);
  const at::ScalarType wanted = float_dtype && at::isFloatingType(stored) ? *float_dtype : stored;
  const uint8_t* bytes = file.data(info);
  const bool aligned = reinterpret_cast<uintptr_t>(bytes) % at::elementSize(stored) == 0;
  if (info.span == 0) return at::empty(info.shape, at::dtype(wanted));
  if (zero_copy && wanted == stored && aligned && info.contiguous()) {
    std::shared_ptr<const void> keep = file.mapping();
    return at::from_blob(const_cast<uint8_t*>(bytes), info.shape, info.strides, [keep](void*) {},
                         at::dtype(stored));
  }
  if (aligned) {
    // Converting or gathering copies anyway: read straight from the map.
    auto view = at::from_blob(const_cast<uint8_t*>(bytes), info.shape, info.strides, at::dtype(stored));
    return view.to(wanted, /*non_blocking=*/false, /*copy=*/true, at::MemoryFormat::Contiguous);
  }
  at::Tensor packed = at::empty({static_cast<int64_t>(info.span / at::elementSize(stored))}, at::dtype(stored));
  std::memcpy(packed.data_ptr(), bytes, info.span);
  return packed.as_strided(info.shape, info.strides)
      .to(wanted, /*non_blocking=*/false, /*copy=*/true, at::MemoryFormat::Contiguous);
}

// A tensor for load_tensors_as: a quantized weight (one with a stored scale) is dequantized.
at::Tensor read_weight(const TensorFile& file, const TensorInfo& info, at::ScalarType float_dtype) {
  const TensorInfo* scale = stored_weight_scale(file, info.name);
  if (scale == nullptr) return read_tensor(file, info, float_dtype, /*zero_copy=*/true);
  return dequantize_scaled_weight(read_tensor(file, info, {}, /*zero_copy=*/true),
                                  read_tensor(file, *scale, {}, /*zero_copy=*/true), float_dtype,
                                  info.name);
}

// Every tensor of the file as an owned CPU tensor in its stored dtype.
TensorMap owned_tensors(const TensorFile& file) {
  TensorMap tensors;
  for (const auto& info : file.tensors()) {
    tensors.emplace(info.name, read_tensor(file, info, {}, /*zero_copy=*/false));
  }
  return tensors;
}

}  // namespace

at::ScalarType scalar_type_from_safetensors(const std::string& dtype) {
  for (const auto& [name, type] : dtype_table()) {
    if (name == dtype) return type;
  }
  throw Error(ErrorCode::kUnsupported, "safetensors dtype '" + dtype + "' is not supported");
}

std::string safetensors_dtype_name(at::ScalarType type) {
  for (const auto& [name, t] : dtype_table()) {
    if (t == type) return name;
  }
  throw Error(ErrorCode::kUnsupported,
              std::string("tensors of dtype ") + c10::toString(type) + " cannot be saved");
}

TensorMap load_safetensors(const std::string& path) {
  return owned_tensors(TensorFile::of(SafetensorsFile::open(path)));
}

void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, at::Tensor>> sorted;
  sorted.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    sorted.emplace_back(name, tensor.to(at::kCPU).contiguous());
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<TensorBytesView> views;
  views.reserve(sorted.size());
  for (const auto& [name, tensor] : sorted) {
    const auto* data = static_cast<const uint8_t*>(tensor.data_ptr());
    views.push_back({name,
                     safetensors_dtype_name(tensor.scalar_type()),
                     tensor.sizes().vec(),
                     {data, tensor.nbytes()}});
  }
  write_safetensors(path, views, metadata);
}

TensorMap load_safetensors_as(const SafetensorsFile& file, at::ScalarType float_dtype,
                              const TensorRename& rename) {
  return load_tensors_as(TensorFile::of(file), float_dtype, rename);
}

TensorMap load_tensors(const std::string& path) { return owned_tensors(TensorFile::open(path)); }

TensorMap load_tensors_as(const TensorFile& file, at::ScalarType float_dtype,
                          const TensorRename& rename) {
  TensorMap tensors;
  std::map<std::string, std::string> source_of;
  for (const auto& info : file.tensors()) {
    if (is_quantization_companion(file, info.name)) continue;
    auto name = rename(info.name);
    if (!name) continue;
    auto [it, inserted] = source_of.emplace(*name, info.name);
    if (!inserted) {
      throw Error(ErrorCode::kCorruptFile, "'" + file.path() + "' has both '" + it->second +
                                               "' and '" + info.name + "', which both load as '" +
                                               *name + "'");
    }
    tensors.emplace(*name, read_weight(file, info, float_dtype));
  }
  return tensors;
}

}  // namespace df::engine

// fp8 weights: ComfyUI's scaled fp8 companions, dequantisation, fp8 storage and upcast at use.
#include "engine/fp8_weights.h"

#include <array>
#include <cmath>
#include <limits>
#include <string_view>
#include <utility>

#include "core/error.h"

namespace df::engine {
namespace {

// Suffixes of the companions of a weight "X.weight", each after "X.".
constexpr std::array<std::string_view, 5> kCompanionSuffixes = {
    "scale_weight", "scale_input", "weight_scale", "input_scale", "comfy_quant"};

// The scaled fp8 files' marker, at the top level or under a checkpoint prefix.
bool is_scaled_fp8_marker(const std::string& name) {
  return name == "scaled_fp8" || name.ends_with(".scaled_fp8");
}

// "X." for a name "X.<suffix>" (or "" for a bare suffix), nullopt when it does not end so.
std::optional<std::string> module_of(const std::string& name, std::string_view suffix) {
  if (name == suffix) return std::string();
  if (name.size() <= suffix.size() || !name.ends_with(suffix)) return std::nullopt;
  const size_t dot = name.size() - suffix.size() - 1;
  if (name[dot] != '.') return std::nullopt;
  return name.substr(0, dot + 1);
}

bool is_fp8(at::ScalarType type) {
  return type == at::kFloat8_e4m3fn || type == at::kFloat8_e5m2;
}

bool is_matrix_weight(const std::string& name, const at::Tensor& tensor) {
  return (name == "weight" || name.ends_with(".weight")) && tensor.dim() == 2 &&
         at::isFloatingType(tensor.scalar_type()) && !is_fp8(tensor.scalar_type());
}

// The largest finite value of an fp8 dtype.
double fp8_max(at::ScalarType fp8_dtype) {
  return fp8_dtype == at::kFloat8_e4m3fn
             ? static_cast<double>(std::numeric_limits<c10::Float8_e4m3fn>::max())
             : static_cast<double>(std::numeric_limits<c10::Float8_e5m2>::max());
}

// w as fp8 over a per-tensor float32 scale max|w| / the dtype's largest finite value (1 for
// all-zero or non-finite weights): {quantized, scale}.
std::pair<at::Tensor, at::Tensor> quantize_per_tensor(const at::Tensor& w, at::ScalarType fp8_dtype) {
  const at::Tensor as_float = w.to(at::kFloat);
  const double largest = as_float.abs().max().item<double>();
  const double scale = largest > 0 && std::isfinite(largest) ? largest / fp8_max(fp8_dtype) : 1.0;
  return {(as_float / scale).to(fp8_dtype),
          at::scalar_tensor(scale, at::TensorOptions(at::kFloat).device(w.device()))};
}

}  // namespace

bool is_quantization_companion(const TensorFile& file, const std::string& name) {
  if (is_scaled_fp8_marker(name)) return true;
  for (std::string_view suffix : kCompanionSuffixes) {
    const auto module = module_of(name, suffix);
    if (module && file.find(*module + "weight") != nullptr) return true;
  }
  return false;
}

const TensorInfo* stored_weight_scale(const TensorFile& file, const std::string& name) {
  const auto module = module_of(name, "weight");
  if (!module) return nullptr;
  for (const char* scale : {"scale_weight", "weight_scale"}) {
    if (const TensorInfo* info = file.find(*module + scale)) return info;
  }
  return nullptr;
}

std::optional<at::ScalarType> quantized_weights_dtype(const TensorFile& file) {
  for (const TensorInfo& info : file.tensors()) {
    if (info.dtype != "F8_E4M3" && info.dtype != "F8_E5M2") continue;
    if (stored_weight_scale(file, info.name) != nullptr) {
      return info.dtype == "F8_E4M3" ? at::kFloat8_e4m3fn : at::kFloat8_e5m2;
    }
  }
  return std::nullopt;
}

at::Tensor dequantize_scaled_weight(const at::Tensor& weight, const at::Tensor& scale,
                                    at::ScalarType dtype, const std::string& name) {
  if (!is_fp8(weight.scalar_type())) {
    throw Error(ErrorCode::kUnsupported,
                "quantized weight '" + name + "' is stored as " + c10::toString(weight.scalar_type()) +
                    "; only fp8 (float8_e4m3fn, float8_e5m2) quantized weights are supported");
  }
  try {
    return (weight.to(at::kFloat) * scale.to(at::kFloat)).to(dtype);
  } catch (const c10::Error&) {
    throw Error(ErrorCode::kCorruptFile, "the scale of quantized weight '" + name + "' has shape " +
                                             c10::str(scale.sizes()) + ", which does not fit its " +
                                             c10::str(weight.sizes()));
  }
}

std::optional<at::ScalarType> fp8_weight_storage(const std::string& weight_dtype) {
  if (weight_dtype == "default") return std::nullopt;
  if (weight_dtype == "fp8_e4m3fn" || weight_dtype == "fp8_e4m3fn_fast") return at::kFloat8_e4m3fn;
  if (weight_dtype == "fp8_e5m2") return at::kFloat8_e5m2;
  throw Error(ErrorCode::kInvalidArgument, "unknown weight_dtype '" + weight_dtype +
                                               "' (default, fp8_e4m3fn, fp8_e4m3fn_fast, fp8_e5m2)");
}

void store_matrix_weights_in_fp8(TensorMap& tensors, at::ScalarType fp8_dtype) {
  TensorMap scales;
  for (auto& [name, tensor] : tensors) {
    if (!is_matrix_weight(name, tensor)) continue;
    auto [quantized, scale] = quantize_per_tensor(tensor, fp8_dtype);
    tensor = std::move(quantized);
    scales.emplace(name + "_scale", std::move(scale));
  }
  tensors.merge(scales);
}

at::Tensor real_weight(const TensorMap& tensors, const std::string& name) {
  const at::Tensor& stored = tensors.at(name);
  const auto scale = tensors.find(name + "_scale");
  if (!is_fp8(stored.scalar_type()) || scale == tensors.end()) return stored.to(at::kFloat);
  return stored.to(at::kFloat) * scale->second.to(at::kFloat);
}

void replace_weight(TensorMap& tensors, const std::string& name, const at::Tensor& value) {
  at::Tensor& stored = tensors.at(name);
  const auto scale = tensors.find(name + "_scale");
  if (!is_fp8(stored.scalar_type()) || scale == tensors.end()) {
    stored = value.to(stored.scalar_type()).contiguous();
    return;
  }
  auto [quantized, new_scale] = quantize_per_tensor(value, stored.scalar_type());
  stored = std::move(quantized);
  scale->second = new_scale.to(scale->second.scalar_type());
}

TensorMap tensors_of(const Weights& weights) {
  TensorMap tensors;
  for (const std::string& name : weights.keys()) tensors.emplace(name, weights.get(name));
  return tensors;
}

at::Tensor weight_for_compute(const Weights& w, const std::string& name, at::ScalarType dtype) {
  const at::Tensor& stored = w.get(name);
  if (!is_fp8(stored.scalar_type())) return stored;
  const std::string scale_name = name + "_scale";
  if (!w.has(scale_name)) return stored.to(dtype);
  return stored.to(dtype) * w.get(scale_name).to(dtype);
}

}  // namespace df::engine

// Weights: lookup with clear errors, prefix views, dtype/device conversion.
#include "engine/weights.h"

#include "core/error.h"

namespace df::engine {

const at::Tensor& Weights::get(const std::string& name) const {
  auto it = tensors_->find(full(name));
  if (it == tensors_->end()) {
    throw Error(ErrorCode::kCorruptFile, "model weights are missing tensor '" + full(name) + "'");
  }
  return it->second;
}

bool Weights::has(const std::string& name) const { return tensors_->count(full(name)) > 0; }

Weights Weights::sub(const std::string& prefix) const { return Weights(tensors_, full(prefix)); }

std::vector<std::string> Weights::keys() const {
  std::vector<std::string> out;
  out.reserve(tensors_->size());
  for (const auto& [k, v] : *tensors_) out.push_back(k);
  return out;
}

namespace {

// bfloat16 convolutions on the CPU run in oneDNN (AMX / AVX-512 BF16 where the CPU has them) and
// are about twice as fast on channels-last tensors (bench/README.md). A channels-last convolution
// weight makes at::conv2d work channels-last, and its output stays so through norms, activations
// and the next convolutions. float32 weights keep their layout, so float32 results do not change.
bool wants_channels_last(const at::Tensor& t, at::ScalarType dtype, at::Device device) {
  return device.is_cpu() && dtype == at::kBFloat16 && t.dim() == 4;
}

}  // namespace

void Weights::to(at::ScalarType dtype, at::Device device) {
  for (auto& [k, t] : *tensors_) {
    if (at::isFloatingType(t.scalar_type()) && !at::isFloat8Type(t.scalar_type())) {
      t = t.to(device, dtype, /*non_blocking=*/false, /*copy=*/false,
               wants_channels_last(t, dtype, device) ? at::MemoryFormat::ChannelsLast
                                                     : at::MemoryFormat::Preserve);
    } else {
      t = t.to(device);
    }
  }
}

}  // namespace df::engine

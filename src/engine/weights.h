// Named tensors of one model component, with cheap prefix views for nested modules.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <ATen/ATen.h>

namespace df::engine {

using TensorMap = std::unordered_map<std::string, at::Tensor>;

class Weights {
 public:
  Weights() : tensors_(std::make_shared<TensorMap>()) {}
  explicit Weights(TensorMap tensors)
      : tensors_(std::make_shared<TensorMap>(std::move(tensors))) {}

  // The tensor `name` under this view's prefix; throws Error(kCorruptFile) naming the full key.
  const at::Tensor& get(const std::string& name) const;
  bool has(const std::string& name) const;
  // A view of the tensors under `prefix.` (e.g. sub("down_blocks.0").get("resnets.0.conv1.weight")).
  Weights sub(const std::string& prefix) const;
  const std::string& prefix() const { return prefix_; }
  // Every key (full names) of the underlying set.
  std::vector<std::string> keys() const;
  size_t size() const { return tensors_->size(); }
  // Converts every floating tensor to dtype/device (in place on the shared set); fp8 storage
  // (fp8_weights.h) only moves, nn_ops upcasting it at use.
  void to(at::ScalarType dtype, at::Device device);

 private:
  Weights(std::shared_ptr<TensorMap> tensors, std::string prefix)
      : tensors_(std::move(tensors)), prefix_(std::move(prefix)) {}
  std::string full(const std::string& name) const { return prefix_.empty() ? name : prefix_ + "." + name; }

  std::shared_ptr<TensorMap> tensors_;
  std::string prefix_;
};

}  // namespace df::engine

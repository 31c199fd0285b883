// The tensors of a PyTorch checkpoint (torch.save's zip or legacy format) held in memory.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "engine/tensor_file.h"

namespace df::engine::torch_pickle {

struct TorchCheckpoint {
  WeightsFormat format = WeightsFormat::kPytorchZip;
  std::vector<TensorInfo> tensors;  // offsets from the start of `bytes`
  std::map<std::string, std::string> metadata;
};

// Whether the bytes start with a pickle's PROTO opcode (protocol 2 to 5).
bool starts_like_pickle(std::span<const uint8_t> bytes);
// Whether they start with the pickled magic number of torch.save's legacy format.
bool starts_like_legacy_checkpoint(std::span<const uint8_t> bytes);

// Reads the checkpoint in `bytes` (a zip archive or a legacy pickle stream) as TensorFile::open
// describes; `path` names the file in errors.
TorchCheckpoint read_torch_checkpoint(std::span<const uint8_t> bytes, const std::string& path);

}  // namespace df::engine::torch_pickle

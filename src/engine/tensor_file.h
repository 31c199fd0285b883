// Format-neutral, memory-mapped weights files: safetensors and PyTorch pickle checkpoints alike.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/safetensors_file.h"

namespace df::engine {

enum class WeightsFormat {
  kSafetensors,
  kPytorchZip,     // torch.save's zip archive (.ckpt, .pt, .pth, .bin)
  kPytorchLegacy,  // torch.save's older stream of pickles (_use_new_zipfile_serialization=False)
};

// "safetensors", "pytorch-zip" or "pytorch-legacy".
std::string_view weights_format_name(WeightsFormat format);

// Whether the file name ends in a PyTorch pickle extension: .ckpt, .pt, .pth, .bin or .pkl (any
// case).
bool has_pickle_extension(const std::string& path);
// Whether it ends in one of ComfyUI's weights extensions: a pickle one, .safetensors or .sft.
bool has_weights_extension(const std::string& path);

// One stored tensor. Its elements lie at data(info) + stride-weighted indices times the dtype's
// size, all within `span` bytes; safetensors tensors are always contiguous.
struct TensorInfo {
  std::string name;
  std::string dtype;  // safetensors dtype names: "F32", "F16", "BF16", "I64", ...
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // in elements
  uint64_t offset = 0;           // of the first element, from the start of the file
  uint64_t span = 0;             // bytes from `offset` that hold every element

  bool contiguous() const;
};

// A read-only memory map of one weights file whose layout has been fully validated: every
// tensor's bytes lie inside the file and match its dtype, shape and strides.
class TensorFile {
 public:
  // Maps and validates `path`, telling the format by its first bytes: a zip archive is a
  // PyTorch zip checkpoint, a pickle stream a legacy one (unless the name ends in .safetensors or
  // .sft and the stream lacks the legacy magic number), anything else safetensors. Pickles are
  // read by a restricted interpreter that runs no code. A pickle's weights may be wrapped
  // ({"state_dict": ...}, {"params_ema": ...}, {"params": ...}); nested dicts and lists flatten to
  // dotted names ("string_to_param.*", "768.0.linear.0.weight") and their plain strings, numbers
  // and booleans become metadata (as Python prints them), as do those beside a wrapper
  // ("global_step"). Throws Error(kIo) if the file cannot be
  // read, Error(kCorruptFile) if it is malformed or truncated, Error(kUnsafeFormat) for a pickle
  // that would run code or build objects, Error(kUnsupported) for well-formed content it cannot
  // hold (compressed entries, big-endian data, unknown dtypes).
  static TensorFile open(const std::string& path);
  // The tensors of an open safetensors file, sharing its memory map.
  static TensorFile of(const SafetensorsFile& file);

  const std::string& path() const { return path_; }
  WeightsFormat format() const { return format_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // The tensor called `name`, or nullptr.
  const TensorInfo* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // First element of a tensor; `info` must come from this file.
  const uint8_t* data(const TensorInfo& info) const { return base_ + info.offset; }
  // Shared ownership of the memory map (see SafetensorsFile::mapping).
  const std::shared_ptr<const void>& mapping() const { return mapping_; }

 private:
  TensorFile() = default;
  void index();

  std::string path_;
  WeightsFormat format_ = WeightsFormat::kSafetensors;
  std::shared_ptr<const void> mapping_;
  const uint8_t* base_ = nullptr;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace df::engine

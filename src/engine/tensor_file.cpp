// TensorFile: one validated listing of tensors over a memory map, whatever the file's format.
#include "engine/tensor_file.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/error.h"
#include "engine/file_mapping.h"
#include "engine/torch_pickle/torch_checkpoint.h"
#include "engine/torch_pickle/zip_archive.h"

namespace df::engine {

std::string_view weights_format_name(WeightsFormat format) {
  switch (format) {
    case WeightsFormat::kPytorchZip:
      return "pytorch-zip";
    case WeightsFormat::kPytorchLegacy:
      return "pytorch-legacy";
    case WeightsFormat::kSafetensors:
      break;
  }
  return "safetensors";
}

namespace {

std::string lowercase_extension(const std::string& path) {
  std::string extension = std::filesystem::path(path).extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return extension;
}

// A zip archive, a legacy checkpoint's magic number, or any other pickle (whose first pickle then
// fails clearly) unless the name says safetensors, whose header length may start with 0x80 0x02.
bool is_pytorch_checkpoint(std::span<const uint8_t> bytes, const std::string& path) {
  const std::string extension = lowercase_extension(path);
  const bool named_safetensors = extension == ".safetensors" || extension == ".sft";
  return torch_pickle::looks_like_zip(bytes) || torch_pickle::starts_like_legacy_checkpoint(bytes) ||
         (torch_pickle::starts_like_pickle(bytes) && !named_safetensors);
}

}  // namespace

bool has_pickle_extension(const std::string& path) {
  const std::string extension = lowercase_extension(path);
  return extension == ".ckpt" || extension == ".pt" || extension == ".pth" || extension == ".bin" ||
         extension == ".pkl";
}

bool has_weights_extension(const std::string& path) {
  const std::string extension = lowercase_extension(path);
  return extension == ".safetensors" || extension == ".sft" || has_pickle_extension(path);
}

bool TensorInfo::contiguous() const {
  int64_t expected = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] != 1 && strides[d] != expected) return false;
    expected *= shape[d];
  }
  return true;
}

TensorFile TensorFile::open(const std::string& path) {
  FileMapping mapping = map_file(path);
  if (!is_pytorch_checkpoint(mapping.bytes, path)) return of(SafetensorsFile::open(path));
  torch_pickle::TorchCheckpoint checkpoint = torch_pickle::read_torch_checkpoint(mapping.bytes, path);
  TensorFile file;
  file.path_ = path;
  file.format_ = checkpoint.format;
  file.mapping_ = std::move(mapping.owner);
  file.base_ = mapping.bytes.data();
  file.tensors_ = std::move(checkpoint.tensors);
  file.metadata_ = std::move(checkpoint.metadata);
  file.index();
  return file;
}

TensorFile TensorFile::of(const SafetensorsFile& safetensors) {
  TensorFile file;
  file.path_ = safetensors.path();
  file.mapping_ = safetensors.mapping();
  file.base_ = static_cast<const uint8_t*>(file.mapping_.get());
  file.metadata_ = safetensors.metadata();
  for (const SafetensorsTensorInfo& stored : safetensors.tensors()) {
    TensorInfo info{stored.name, stored.dtype, stored.shape, {}, 0, stored.end - stored.begin};
    info.strides.resize(info.shape.size());
    int64_t stride = 1;
    for (size_t d = info.shape.size(); d-- > 0;) {
      info.strides[d] = stride;
      stride *= info.shape[d];
    }
    info.offset = static_cast<uint64_t>(safetensors.data(stored) - file.base_);
    file.tensors_.push_back(std::move(info));
  }
  file.index();
  return file;
}

const TensorInfo* TensorFile::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void TensorFile::index() {
  for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
}

}  // namespace df::engine

// Validated, memory-mapped reader and atomic writer of safetensors files (no libtorch needed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace df::engine {

// One tensor entry of a safetensors header; begin/end are byte offsets into the data section.
struct SafetensorsTensorInfo {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16", "I64", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

// Bytes per element of a safetensors dtype name; 0 when the name is not a known dtype.
size_t safetensors_dtype_size(const std::string& dtype);

// A read-only memory map of one safetensors file whose header has been fully validated: every
// tensor's byte range lies inside the file, matches its dtype and shape and overlaps no other.
class SafetensorsFile {
 public:
  // Maps and validates `path`; throws Error(kIo) if it cannot be read, Error(kCorruptFile) if it
  // is not a well-formed safetensors file.
  static SafetensorsFile open(const std::string& path);

  SafetensorsFile(SafetensorsFile&& other) noexcept = default;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept = default;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // Tensors in the order of their data in the file.
  const std::vector<SafetensorsTensorInfo>& tensors() const { return tensors_; }
  // The tensor called `name`, or nullptr.
  const SafetensorsTensorInfo* find(const std::string& name) const;
  // The header's "__metadata__" (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // First byte of a tensor's data; `info` must come from this file.
  const uint8_t* data(const SafetensorsTensorInfo& info) const { return data_ + info.begin; }
  // Shared ownership of the memory map: tensors that view the file's bytes hold it, so the map
  // outlives this object for as long as they do.
  const std::shared_ptr<const void>& mapping() const { return mapping_; }

 private:
  SafetensorsFile() = default;

  std::string path_;
  std::shared_ptr<const void> mapping_;
  const uint8_t* data_ = nullptr;
  std::vector<SafetensorsTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// A tensor to write, owning its little-endian, row-major bytes.
struct RawTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// A tensor to write whose bytes live elsewhere (valid until the write returns).
struct TensorBytesView {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::span<const uint8_t> bytes;
};

// Writes a safetensors file through a temporary file in the same directory and a rename, so a
// reader never sees a half-written file. Throws Error(kInvalidArgument) for an unknown dtype, a
// duplicate name or a byte count that does not match the shape, Error(kIo) if writing fails.
void write_safetensors(const std::string& path, const std::vector<TensorBytesView>& tensors,
                       const std::map<std::string, std::string>& metadata = {});
void write_safetensors(const std::string& path, const std::vector<RawTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace df::engine

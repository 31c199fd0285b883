// A read-only memory map of a whole regular file, shared by the tensors that view its bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace df::engine {

struct FileMapping {
  // Owns the map; unmaps when the last holder lets go (null for an empty file).
  std::shared_ptr<const void> owner;
  std::span<const uint8_t> bytes;
};

// Maps `path` read-only; throws Error(kIo) when it cannot be opened, is not a regular file or
// cannot be mapped.
FileMapping map_file(const std::string& path);

}  // namespace df::engine

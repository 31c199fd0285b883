// The entries of an uncompressed ("stored") zip archive in memory, as PyTorch's checkpoints are.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>

namespace df::engine::torch_pickle {

// Where one entry's bytes lie in the archive.
struct ZipEntry {
  uint64_t offset = 0;
  uint64_t size = 0;
};

// Reads the central directory (zip64 included) and each entry's local header. Every offset and
// size is checked against the archive; throws Error(kCorruptFile) naming `path` for a malformed
// or truncated archive and Error(kUnsupported) for compressed or encrypted entries, which
// PyTorch never writes.
std::map<std::string, ZipEntry> read_zip_entries(std::span<const uint8_t> archive,
                                                 const std::string& path);

// Whether the bytes start like a zip archive ("PK\3\4").
bool looks_like_zip(std::span<const uint8_t> bytes);

}  // namespace df::engine::torch_pickle

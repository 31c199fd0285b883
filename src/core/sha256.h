// SHA-256 digests of memory and files, as lowercase hex.
#pragma once

#include <cstddef>
#include <string>

namespace df {

std::string sha256_hex(const void* data, size_t size);
// Streams the file; throws Error(kIo) when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace df

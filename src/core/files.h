// Small filesystem helpers shared by the binaries.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace df {

// Writes `bytes` to a temporary file beside `path`, flushes it and renames it over `path`, so a
// reader never sees a half-written file. Throws Error(kIo).
void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes);

// The whole file; throws Error(kIo) when it cannot be read.
std::vector<uint8_t> read_file_bytes(const std::string& path);

// The text of a configuration file; nullopt when there is none (the configuration's defaults).
// Throws Error(kIo) "cannot read the <what> <path>" when it exists but cannot be read.
std::optional<std::string> read_config_text(const std::string& path, const std::string& what);

// `relative` joined to `root`, refusing absolute names and names that leave `root` ("..",
// symlinks out). Throws Error(kInvalidArgument) naming `what`.
std::string join_inside(const std::string& root, const std::string& relative, const std::string& what);

}  // namespace df

// Where a ComfyUI user-data request points: file names from raw request targets, kept inside the
// user directory.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace df::api {

// The file names of a "/userdata/{file}" or "/userdata/{file}/move/{dest}" request (with or
// without the "/api" prefix), each percent-decoded once.
struct UserDataTarget {
  std::string file;
  std::optional<std::string> move_to;  // set for ".../move/{dest}" when `split_move` is asked for
};

// Reads the names from the raw request target: the web frontend encodes a name with
// encodeURIComponent, so "workflows%2Fa.json" is one name with a '/' while a literal "/move/"
// separates the source from the destination. Raw '/' inside a name are accepted too. Throws
// Error(kBadRequest) when the target has no "/userdata/" segment.
UserDataTarget parse_userdata_target(std::string_view target, bool split_move);

// `text` with every valid "%XX" turned into its byte; other '%' stay as they are.
std::string percent_decode(std::string_view text);

// The path of `name` below `root`, or nothing when it would leave `root` (absolute names, "..",
// symlinks out) or holds a NUL character. "" and "." name `root` itself.
std::optional<std::filesystem::path> user_path_inside(const std::filesystem::path& root,
                                                      std::string_view name);

// `path` relative to `root` with '/' separators (what ComfyUI answers for a saved file).
std::string user_relative_path(const std::filesystem::path& root,
                               const std::filesystem::path& path);

}  // namespace df::api

// Where a ComfyUI user-data request points: file names from raw request targets, kept inside the
// user directory.
#include "api/comfy_userdata_paths.h"

#include "core/error.h"
#include "core/files.h"
#include "image/text_encoding.h"

namespace df::api {
namespace {

constexpr std::string_view kMoveSeparator = "/move/";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The raw text after "/userdata/" in the path of `target`.
std::string_view raw_userdata_tail(std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  for (std::string_view prefix : {"/api/userdata/", "/userdata/"}) {
    if (path.starts_with(prefix)) return path.substr(prefix.size());
  }
  throw Error(ErrorCode::kBadRequest, "'" + std::string(path) + "' is not a user data path");
}

// `name` when it is valid UTF-8: a file named otherwise could never be listed as JSON.
std::string utf8_name(std::string name) {
  if (!is_valid_utf8(name)) {
    throw Error(ErrorCode::kBadRequest, "the user data path is not valid UTF-8");
  }
  return name;
}

}  // namespace

UserDataTarget parse_userdata_target(std::string_view target, bool split_move) {
  const std::string_view tail = raw_userdata_tail(target);
  const std::size_t move = split_move ? tail.find(kMoveSeparator) : std::string_view::npos;
  if (move == std::string_view::npos) return {utf8_name(percent_decode(tail)), std::nullopt};
  return {utf8_name(percent_decode(tail.substr(0, move))),
          utf8_name(percent_decode(tail.substr(move + kMoveSeparator.size())))};
}

std::string percent_decode(std::string_view text) {
  std::string decoded;
  decoded.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const int high = text[i] == '%' && i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
    const int low = high >= 0 ? hex_value(text[i + 2]) : -1;
    if (low >= 0) {
      decoded += static_cast<char>(high * 16 + low);
      i += 2;
    } else {
      decoded += text[i];
    }
  }
  return decoded;
}

std::optional<std::filesystem::path> user_path_inside(const std::filesystem::path& root,
                                                      std::string_view name) {
  if (name.find('\0') != std::string_view::npos) return std::nullopt;
  try {
    return std::filesystem::path(join_inside(root.string(), std::string(name), "user data path"));
  } catch (const Error&) {  // leaves the root
    return std::nullopt;
  } catch (const std::filesystem::filesystem_error&) {  // e.g. a name too long to resolve
    return std::nullopt;
  }
}

std::string user_relative_path(const std::filesystem::path& root,
                               const std::filesystem::path& path) {
  return std::filesystem::relative(path, root).generic_string();
}

}  // namespace df::api

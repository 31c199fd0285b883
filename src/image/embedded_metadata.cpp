// Lookup and validation of embedded image metadata entries.
#include "image/embedded_metadata.h"

#include <algorithm>
#include <set>

#include "core/error.h"
#include "image/text_encoding.h"

namespace df {
namespace {

constexpr size_t kMaxKeyLength = 79;  // the PNG keyword limit, applied to every format alike

bool is_key_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

}  // namespace

const std::string* EmbeddedMetadata::find(std::string_view key) const {
  for (const auto& [k, v] : text) {
    if (k == key) return &v;
  }
  return nullptr;
}

void validate_embedded_metadata(const EmbeddedMetadata& metadata) {
  std::set<std::string_view> seen;
  for (size_t index = 0; index < metadata.text.size(); ++index) {
    const auto& [key, value] = metadata.text[index];
    if (key.empty() || key.size() > kMaxKeyLength ||
        !std::all_of(key.begin(), key.end(), is_key_char)) {
      // The key itself is not echoed: it may not even be valid UTF-8.
      throw Error(ErrorCode::kInvalidArgument,
                  "image metadata key #" + std::to_string(index) +
                      " is invalid: keys are 1-79 letters, digits or underscores",
                  {{"index", index}});
    }
    if (!seen.insert(key).second) {
      throw Error(ErrorCode::kInvalidArgument, "image metadata key '" + key + "' appears twice",
                  {{"key", key}});
    }
    if (value.find('\0') != std::string::npos) {
      throw Error(ErrorCode::kInvalidArgument,
                  "image metadata value of '" + key + "' contains a NUL character", {{"key", key}});
    }
    if (!is_valid_utf8(value)) {
      throw Error(ErrorCode::kInvalidArgument,
                  "image metadata value of '" + key + "' is not valid UTF-8", {{"key", key}});
    }
  }
}

}  // namespace df

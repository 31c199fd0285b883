// Text metadata embedded in an image file: A1111 "parameters", ComfyUI "prompt" and "workflow".
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace df {

// Ordered key/value text entries, values in UTF-8. Keys are 1-79 characters of [A-Za-z0-9_]
// (e.g. "parameters", "prompt", "workflow"), unique, and values contain no NUL character.
struct EmbeddedMetadata {
  std::vector<std::pair<std::string, std::string>> text;

  // The value stored under `key`, or nullptr.
  const std::string* find(std::string_view key) const;
};

// Throws Error(kInvalidArgument) naming the first entry that breaks the rules above.
void validate_embedded_metadata(const EmbeddedMetadata& metadata);

}  // namespace df

// Base64 decoding (standard alphabet, padding optional, whitespace ignored).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace df {

// nullopt when the text is not base64.
std::optional<std::vector<uint8_t>> decode_base64(std::string_view text);

}  // namespace df

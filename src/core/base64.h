// Base64 (standard alphabet): encoding, and decoding with optional padding and whitespace ignored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace df {

std::string encode_base64(const std::vector<uint8_t>& bytes);

// nullopt when the text is not base64.
std::optional<std::vector<uint8_t>> decode_base64(std::string_view text);

}  // namespace df

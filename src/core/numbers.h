// Parsing whole numbers from text the way request parameters need it: all of it, or nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace df {

// The integer `text` spells (optional sign, decimal digits, nothing else); nullopt otherwise,
// including on overflow.
std::optional<int64_t> parse_integer(std::string_view text);

}  // namespace df

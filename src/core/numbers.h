// Numbers and text: whole numbers parsed the way request parameters need it (all of it, or
// nothing), and byte counts written for people.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace df {

// The integer `text` spells (optional sign, decimal digits, nothing else); nullopt otherwise,
// including on overflow.
std::optional<int64_t> parse_integer(std::string_view text);

// A byte count as people read it in messages: "512 MB" below a GiB, else GiB to a tenth ("1.5 GB",
// and "8 GB" when whole).
std::string bytes_in_words(int64_t bytes);

}  // namespace df

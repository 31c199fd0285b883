// Parsing whole numbers from text, and byte counts in words.
#include "core/numbers.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace df {

std::optional<int64_t> parse_integer(std::string_view text) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string bytes_in_words(int64_t bytes) {
  constexpr double kMiB = 1024.0 * 1024.0;
  const double mib = static_cast<double>(bytes) / kMiB;
  char text[32];
  if (mib < 1024) {
    std::snprintf(text, sizeof text, "%.0f MB", mib);
    return text;
  }
  const double tenths = std::round(mib * 10 / 1024);
  std::snprintf(text, sizeof text, std::fmod(tenths, 10) == 0 ? "%.0f GB" : "%.1f GB", tenths / 10);
  return text;
}

}  // namespace df

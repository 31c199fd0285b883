// UTF-8 <-> Latin-1 / UTF-16 conversions on top of utf8proc.
#include "image/text_encoding.h"

#include <utf8proc.h>

#include "core/error.h"

namespace df {
namespace {

constexpr char32_t kReplacementCharacter = 0xFFFD;

// The characters of `utf8`, or nullopt when it is not valid UTF-8.
std::optional<std::u32string> decode_utf8(std::string_view utf8) {
  const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(utf8.data());
  const auto size = static_cast<utf8proc_ssize_t>(utf8.size());
  std::u32string code_points;
  code_points.reserve(utf8.size());
  utf8proc_ssize_t position = 0;
  while (position < size) {
    utf8proc_int32_t code_point = 0;
    const utf8proc_ssize_t length =
        utf8proc_iterate(bytes + position, size - position, &code_point);
    if (length <= 0) return std::nullopt;
    code_points.push_back(static_cast<char32_t>(code_point));
    position += length;
  }
  return code_points;
}

std::u32string decode_utf8_or_throw(std::string_view utf8) {
  auto code_points = decode_utf8(utf8);
  if (!code_points)
    throw Error(ErrorCode::kInvalidArgument, "image metadata text is not valid UTF-8");
  return std::move(*code_points);
}

void append_utf8(std::string& out, char32_t code_point) {
  utf8proc_uint8_t buffer[4];
  const utf8proc_ssize_t length =
      utf8proc_encode_char(static_cast<utf8proc_int32_t>(code_point), buffer);
  out.append(reinterpret_cast<const char*>(buffer), static_cast<size_t>(length));
}

bool is_high_surrogate(char16_t unit) { return unit >= 0xD800 && unit <= 0xDBFF; }
bool is_low_surrogate(char16_t unit) { return unit >= 0xDC00 && unit <= 0xDFFF; }

}  // namespace

std::optional<std::string> utf8_to_latin1(std::string_view utf8) {
  std::string latin1;
  for (char32_t code_point : decode_utf8_or_throw(utf8)) {
    if (code_point > 0xFF) return std::nullopt;
    latin1.push_back(static_cast<char>(code_point));
  }
  return latin1;
}

std::string latin1_to_utf8(std::string_view latin1) {
  std::string utf8;
  utf8.reserve(latin1.size());
  for (char c : latin1) append_utf8(utf8, static_cast<unsigned char>(c));
  return utf8;
}

std::u16string utf8_to_utf16(std::string_view utf8) {
  std::u16string utf16;
  for (char32_t code_point : decode_utf8_or_throw(utf8)) {
    if (code_point < 0x10000) {
      utf16.push_back(static_cast<char16_t>(code_point));
    } else {
      const char32_t offset = code_point - 0x10000;
      utf16.push_back(static_cast<char16_t>(0xD800 + (offset >> 10)));
      utf16.push_back(static_cast<char16_t>(0xDC00 + (offset & 0x3FF)));
    }
  }
  return utf16;
}

std::string utf16_to_utf8(std::u16string_view utf16) {
  std::string utf8;
  utf8.reserve(utf16.size());
  for (size_t i = 0; i < utf16.size(); ++i) {
    const char16_t unit = utf16[i];
    if (is_high_surrogate(unit) && i + 1 < utf16.size() && is_low_surrogate(utf16[i + 1])) {
      append_utf8(utf8,
                  0x10000 + ((char32_t{unit} - 0xD800) << 10) + (char32_t{utf16[i + 1]} - 0xDC00));
      ++i;
    } else if (is_high_surrogate(unit) || is_low_surrogate(unit)) {
      append_utf8(utf8, kReplacementCharacter);
    } else {
      append_utf8(utf8, unit);
    }
  }
  return utf8;
}

bool is_valid_utf8(std::string_view bytes) { return decode_utf8(bytes).has_value(); }

std::string utf8_or_latin1_to_utf8(std::string_view bytes) {
  if (is_valid_utf8(bytes)) return std::string(bytes);
  return latin1_to_utf8(bytes);
}

}  // namespace df

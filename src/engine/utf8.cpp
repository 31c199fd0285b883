// UTF-8 decoding and encoding with utf8proc.
#include "engine/utf8.h"

#include <utf8proc.h>

#include "core/error.h"

namespace df::engine {

std::u32string decode_utf8(std::string_view text) {
  std::u32string code_points;
  code_points.reserve(text.size());
  auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  size_t offset = 0;
  while (offset < text.size()) {
    utf8proc_int32_t cp = 0;
    const auto used =
        utf8proc_iterate(bytes + offset, static_cast<utf8proc_ssize_t>(text.size() - offset), &cp);
    if (used <= 0) {
      throw Error(
          ErrorCode::kInvalidArgument,
          "prompt text is not valid UTF-8 (bad byte at offset " + std::to_string(offset) + ")");
    }
    code_points.push_back(static_cast<char32_t>(cp));
    offset += static_cast<size_t>(used);
  }
  return code_points;
}

void append_utf8(std::string& out, char32_t code_point) {
  utf8proc_uint8_t buffer[4];
  const auto length = utf8proc_encode_char(static_cast<utf8proc_int32_t>(code_point), buffer);
  out.append(reinterpret_cast<const char*>(buffer), static_cast<size_t>(length));
}

std::string encode_utf8(std::u32string_view text) {
  std::string out;
  for (char32_t code_point : text) append_utf8(out, code_point);
  return out;
}

}  // namespace df::engine

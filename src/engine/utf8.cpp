// UTF-8 decoding and encoding with utf8proc.
#include "engine/utf8.h"

#include <utf8proc.h>

#include <cstdlib>

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

std::string nfc_utf8(std::string_view text) {
  utf8proc_uint8_t* composed = nullptr;
  const auto length =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                   static_cast<utf8proc_ssize_t>(text.size()), &composed,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (length < 0) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string("prompt text cannot be normalised: ") + utf8proc_errmsg(length));
  }
  std::string out(reinterpret_cast<const char*>(composed), static_cast<size_t>(length));
  std::free(composed);
  return out;
}

}  // namespace df::engine

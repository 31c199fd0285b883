// UTF-8 to code points and back, for the prompt tokenizers.
#pragma once

#include <string>
#include <string_view>

namespace df::engine {

// The code points of `text`. Throws Error(kInvalidArgument), naming the offset of the first bad
// byte, when `text` is not valid UTF-8.
std::u32string decode_utf8(std::string_view text);

// Appends the UTF-8 bytes of `code_point` to `out`.
void append_utf8(std::string& out, char32_t code_point);

std::string encode_utf8(std::u32string_view text);

// Unicode NFC of UTF-8 `text` (canonical composition, as the prompt tokenizers normalise). Throws
// Error(kInvalidArgument) when `text` cannot be normalised (invalid UTF-8).
std::string nfc_utf8(std::string_view text);

}  // namespace df::engine

// Conversions between UTF-8 (every string in Dream Forge) and the text encodings of image metadata.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace df {

// The Latin-1 bytes of `utf8`, or nullopt when a character lies beyond U+00FF.
// Throws Error(kInvalidArgument) when `utf8` is not valid UTF-8.
std::optional<std::string> utf8_to_latin1(std::string_view utf8);
std::string latin1_to_utf8(std::string_view latin1);

// UTF-16 code units (surrogate pairs beyond U+FFFF). Throws Error(kInvalidArgument) on bad UTF-8.
std::u16string utf8_to_utf16(std::string_view utf8);
// Lenient, as text readers are: an unpaired surrogate becomes U+FFFD.
std::string utf16_to_utf8(std::u16string_view utf16);

bool is_valid_utf8(std::string_view bytes);
// `bytes` as they are when they are valid UTF-8, else read as Latin-1: for text fields whose
// encoding writers disagree on (EXIF ASCII tags, PNG iTXt from careless writers).
std::string utf8_or_latin1_to_utf8(std::string_view bytes);

}  // namespace df

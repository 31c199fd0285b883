// MessagePack bytes to and from JSON values, as the DGX-Pixels wire carries them: one value a frame.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace df::pixels {

// The largest frame the endpoint and the terminal client read; larger ones are refused unread.
inline constexpr std::size_t kMaxMessageBytes = std::size_t{1} << 20;

// `value` as MessagePack: objects as maps with their keys in the object's order, strings as str
// (never bin), integers in their shortest form, floats as float64, booleans and null as such;
// binary values as bin. Python's msgpack.packb(value, use_bin_type=True) gives the same bytes.
std::string encode_msgpack(const nlohmann::ordered_json& value);

// The one MessagePack value that fills `bytes` exactly. float32 and float64 both become numbers,
// bin and ext values become JSON binary values. Throws Error(kInvalidArgument) saying what is
// wrong for bytes that are not one well-formed value (truncated, trailing bytes, reserved type
// byte), map keys that are not strings, strings that are not UTF-8, nesting deeper than 32, or
// more elements or string bytes than the frame can hold; the bytes are checked before anything is
// built from them.
nlohmann::json decode_msgpack(std::string_view bytes);

}  // namespace df::pixels

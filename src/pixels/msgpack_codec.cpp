// MessagePack bytes to and from JSON values: a writer of the spec, and a checked reader.
#include "pixels/msgpack_codec.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/error.h"
#include "core/json_text.h"

namespace df::pixels {

using nlohmann::ordered_json;

// ---- Writing -----------------------------------------------------------------------------------

namespace {

void put_byte(std::string& out, uint8_t byte) { out.push_back(static_cast<char>(byte)); }

void put_big_endian(std::string& out, uint64_t value, int width) {
  for (int shift = (width - 1) * 8; shift >= 0; shift -= 8) {
    put_byte(out, static_cast<uint8_t>(value >> shift));
  }
}

// The type bytes of a family whose header holds a length or count (str, bin, array, map).
struct LengthForms {
  std::optional<uint8_t> fixed;  // the fix form's base (the length sits in its low bits)
  uint64_t fixed_max = 0;
  std::optional<uint8_t> one_byte;  // arrays and maps have no 8-bit form
  uint8_t two_bytes = 0;
  uint8_t four_bytes = 0;
};
constexpr LengthForms kStrForms{0xa0, 31, 0xd9, 0xda, 0xdb};
constexpr LengthForms kBinForms{std::nullopt, 0, 0xc4, 0xc5, 0xc6};
constexpr LengthForms kArrayForms{0x90, 15, std::nullopt, 0xdc, 0xdd};
constexpr LengthForms kMapForms{0x80, 15, std::nullopt, 0xde, 0xdf};

// The shortest header of `forms` that holds `length`.
void put_length(std::string& out, const LengthForms& forms, uint64_t length) {
  if (forms.fixed && length <= forms.fixed_max) {
    put_byte(out, static_cast<uint8_t>(*forms.fixed | length));
  } else if (forms.one_byte && length <= 0xff) {
    put_byte(out, *forms.one_byte);
    put_big_endian(out, length, 1);
  } else if (length <= 0xffff) {
    put_byte(out, forms.two_bytes);
    put_big_endian(out, length, 2);
  } else if (length <= 0xffffffff) {
    put_byte(out, forms.four_bytes);
    put_big_endian(out, length, 4);
  } else {
    throw Error(ErrorCode::kInvalidArgument,
                "too long for MessagePack: " + std::to_string(length) + " bytes or elements");
  }
}

void put_unsigned(std::string& out, uint64_t value) {
  if (value < 0x80) {
    put_byte(out, static_cast<uint8_t>(value));  // positive fixint
  } else if (value <= 0xff) {
    put_byte(out, 0xcc);
    put_big_endian(out, value, 1);
  } else if (value <= 0xffff) {
    put_byte(out, 0xcd);
    put_big_endian(out, value, 2);
  } else if (value <= 0xffffffff) {
    put_byte(out, 0xce);
    put_big_endian(out, value, 4);
  } else {
    put_byte(out, 0xcf);
    put_big_endian(out, value, 8);
  }
}

void put_signed(std::string& out, int64_t value) {
  if (value >= 0) return put_unsigned(out, static_cast<uint64_t>(value));
  const auto bits = static_cast<uint64_t>(value);  // two's complement: the low bytes are the value
  if (value >= -32) {
    put_byte(out, static_cast<uint8_t>(bits));  // negative fixint
  } else if (value >= INT8_MIN) {
    put_byte(out, 0xd0);
    put_big_endian(out, bits, 1);
  } else if (value >= INT16_MIN) {
    put_byte(out, 0xd1);
    put_big_endian(out, bits, 2);
  } else if (value >= INT32_MIN) {
    put_byte(out, 0xd2);
    put_big_endian(out, bits, 4);
  } else {
    put_byte(out, 0xd3);
    put_big_endian(out, bits, 8);
  }
}

void put_string(std::string& out, const std::string& text) {
  put_length(out, kStrForms, text.size());
  out += text;
}

void put_value(std::string& out, const ordered_json& value) {
  switch (value.type()) {
    case ordered_json::value_t::null:
      return put_byte(out, 0xc0);
    case ordered_json::value_t::boolean:
      return put_byte(out, value.get<bool>() ? 0xc3 : 0xc2);
    case ordered_json::value_t::number_unsigned:
      return put_unsigned(out, value.get<uint64_t>());
    case ordered_json::value_t::number_integer:
      return put_signed(out, value.get<int64_t>());
    case ordered_json::value_t::number_float:
      put_byte(out, 0xcb);
      return put_big_endian(out, std::bit_cast<uint64_t>(value.get<double>()), 8);
    case ordered_json::value_t::string:
      return put_string(out, value.get_ref<const std::string&>());
    case ordered_json::value_t::binary: {
      const auto& bytes = value.get_binary();
      put_length(out, kBinForms, bytes.size());
      out.append(bytes.begin(), bytes.end());
      return;
    }
    case ordered_json::value_t::array:
      put_length(out, kArrayForms, value.size());
      for (const auto& element : value) put_value(out, element);
      return;
    case ordered_json::value_t::object:
      put_length(out, kMapForms, value.size());
      for (const auto& [key, element] : value.items()) {
        put_string(out, key);
        put_value(out, element);
      }
      return;
    case ordered_json::value_t::discarded:
      break;
  }
  throw Error(ErrorCode::kInvalidArgument, "a discarded JSON value has no MessagePack form");
}

}  // namespace

std::string encode_msgpack(const ordered_json& value) {
  std::string out;
  put_value(out, value);
  return out;
}

// ---- Reading -----------------------------------------------------------------------------------

namespace {

constexpr size_t kMaxDepth = 32;

// What a type byte announces.
enum class Kind { kScalar, kString, kBytes, kArray, kMap };
struct Header {
  Kind kind = Kind::kScalar;
  // Payload bytes of scalars, strings and bytes; elements of arrays; pairs of maps.
  uint64_t size = 0;
};

// Walks the bytes without recursion and throws unless they are exactly one well-formed value whose
// every declared length fits in the bytes that follow it.
class FrameCheck {
 public:
  explicit FrameCheck(std::string_view bytes) : bytes_(bytes) {}

  void run() {
    if (bytes_.empty()) fail("no bytes");
    do {
      read_value();
      while (!open_.empty() && open_.back().items_left == 0) open_.pop_back();
    } while (!open_.empty());
    if (pos_ != bytes_.size()) {
      fail(std::to_string(bytes_.size() - pos_) + " trailing bytes from byte " +
           std::to_string(pos_));
    }
  }

 private:
  struct OpenContainer {
    uint64_t items_left;  // a map's keys and values both count
    bool is_map;
  };

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(ErrorCode::kInvalidArgument, "not a MessagePack value: " + what);
  }
  [[noreturn]] void truncated(size_t start) const {
    fail("truncated at byte " + std::to_string(start));
  }

  size_t bytes_left() const { return bytes_.size() - pos_; }

  uint64_t read_big_endian(size_t start, int width) {
    if (bytes_left() < static_cast<size_t>(width)) truncated(start);
    uint64_t value = 0;
    for (int i = 0; i < width; ++i) value = value << 8 | static_cast<uint8_t>(bytes_[pos_++]);
    return value;
  }

  // The header at pos_ (pos_ then sits after it: after the type byte and any length bytes).
  Header read_header(size_t start) {
    const auto type = static_cast<uint8_t>(bytes_[pos_++]);
    if (type <= 0x7f || type >= 0xe0) return {Kind::kScalar, 0};  // fixint
    if (type <= 0x8f) return {Kind::kMap, type & 0x0fu};
    if (type <= 0x9f) return {Kind::kArray, type & 0x0fu};
    if (type <= 0xbf) return {Kind::kString, type & 0x1fu};
    switch (type) {
      case 0xc0: case 0xc2: case 0xc3: return {Kind::kScalar, 0};
      case 0xc1: fail("reserved type byte 0xc1 at byte " + std::to_string(start));
      case 0xc4: return {Kind::kBytes, read_big_endian(start, 1)};
      case 0xc5: return {Kind::kBytes, read_big_endian(start, 2)};
      case 0xc6: return {Kind::kBytes, read_big_endian(start, 4)};
      case 0xc7: return {Kind::kBytes, read_big_endian(start, 1) + 1};  // ext: + its type byte
      case 0xc8: return {Kind::kBytes, read_big_endian(start, 2) + 1};
      case 0xc9: return {Kind::kBytes, read_big_endian(start, 4) + 1};
      case 0xca: return {Kind::kScalar, 4};
      case 0xcb: return {Kind::kScalar, 8};
      case 0xcc: case 0xd0: return {Kind::kScalar, 1};
      case 0xcd: case 0xd1: return {Kind::kScalar, 2};
      case 0xce: case 0xd2: return {Kind::kScalar, 4};
      case 0xcf: case 0xd3: return {Kind::kScalar, 8};
      case 0xd4: return {Kind::kBytes, 2};  // fixext 1..16: the type byte and the data
      case 0xd5: return {Kind::kBytes, 3};
      case 0xd6: return {Kind::kBytes, 5};
      case 0xd7: return {Kind::kBytes, 9};
      case 0xd8: return {Kind::kBytes, 17};
      case 0xd9: return {Kind::kString, read_big_endian(start, 1)};
      case 0xda: return {Kind::kString, read_big_endian(start, 2)};
      case 0xdb: return {Kind::kString, read_big_endian(start, 4)};
      case 0xdc: return {Kind::kArray, read_big_endian(start, 2)};
      case 0xdd: return {Kind::kArray, read_big_endian(start, 4)};
      case 0xde: return {Kind::kMap, read_big_endian(start, 2)};
      default: return {Kind::kMap, read_big_endian(start, 4)};  // 0xdf
    }
  }

  void read_value() {
    const bool is_key = !open_.empty() && open_.back().is_map && open_.back().items_left % 2 == 0;
    if (!open_.empty()) --open_.back().items_left;
    const size_t start = pos_;
    if (bytes_left() == 0) truncated(start);
    const Header header = read_header(start);
    if (is_key && header.kind != Kind::kString) {
      fail("the map key at byte " + std::to_string(start) + " is not a string");
    }
    if (header.kind == Kind::kArray || header.kind == Kind::kMap) return open(header, start);
    if (header.size > bytes_left()) truncated(start);
    if (header.kind == Kind::kString) check_utf8(start, header.size);
    pos_ += header.size;
  }

  void open(const Header& header, size_t start) {
    const bool is_map = header.kind == Kind::kMap;
    const char* name = is_map ? "map" : "array";
    if (open_.size() == kMaxDepth) {
      fail("the " + std::string(name) + " at byte " + std::to_string(start) +
           " is nested deeper than " + std::to_string(kMaxDepth));
    }
    // Each key or element takes a byte or more.
    const uint64_t items = is_map ? header.size * 2 : header.size;
    if (items > bytes_left()) {
      fail("the " + std::string(name) + " at byte " + std::to_string(start) + " declares " +
           std::to_string(header.size) + (is_map ? " pairs" : " elements") + ", more than the " +
           std::to_string(bytes_left()) + " bytes left can hold");
    }
    if (items > 0) open_.push_back({items, is_map});
  }

  void check_utf8(size_t start, uint64_t size) const {
    const std::string_view text = bytes_.substr(pos_, size);
    const auto is_ascii = [](char c) { return static_cast<uint8_t>(c) < 0x80; };
    if (!std::all_of(text.begin(), text.end(), is_ascii) && valid_utf8(text) != text) {
      fail("the string at byte " + std::to_string(start) + " is not UTF-8");
    }
  }

  std::string_view bytes_;
  size_t pos_ = 0;
  std::vector<OpenContainer> open_;
};

}  // namespace

nlohmann::json decode_msgpack(std::string_view bytes) {
  FrameCheck(bytes).run();
  return nlohmann::json::from_msgpack(bytes.begin(), bytes.end());
}

}  // namespace df::pixels

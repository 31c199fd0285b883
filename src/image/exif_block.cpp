// Writing and reading the EXIF (TIFF) block of JPEG and WebP files.
#include "image/exif_block.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "image/text_encoding.h"

namespace df {
namespace {

constexpr std::string_view kJpegExifPrefix{"Exif\0\0", 6};
constexpr uint16_t kTiffMagic = 42;
constexpr uint32_t kTiffHeaderSize = 8;
constexpr uint32_t kIfdEntrySize = 12;

constexpr uint16_t kTagDocumentName = 0x010d;
constexpr uint16_t kTagImageDescription = 0x010e;
constexpr uint16_t kTagMake = 0x010f;
constexpr uint16_t kTagModel = 0x0110;
constexpr uint16_t kTagOrientation = 0x0112;
constexpr uint16_t kTagExifIfdPointer = 0x8769;
constexpr uint16_t kTagUserComment = 0x9286;

// IFD0 tags for "<key>:<value>" entries: Model for "prompt", the others in this order.
constexpr std::array<uint16_t, 3> kOtherEntryTags{kTagMake, kTagImageDescription, kTagDocumentName};
constexpr std::array<uint16_t, 4> kKeyedTags{kTagModel, kTagMake, kTagImageDescription,
                                             kTagDocumentName};

enum TiffType : uint16_t {
  kByte = 1,
  kAscii = 2,
  kShort = 3,
  kLong = 4,
  kUndefined = 7,
  kIfd = 13
};

// UserComment starts with an 8-byte character-set name ("ASCII\0\0\0", "UNICODE\0", zeros...).
constexpr std::string_view kCharsetUnicode{"UNICODE\0", 8};
constexpr size_t kCharsetSize = 8;

// ---- writing (big-endian) ----

struct TiffEntry {
  uint16_t tag;
  uint16_t type;
  std::vector<uint8_t> value;  // count = value.size() for the byte-sized types written here
};

void put_u16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  put_u16(out, static_cast<uint16_t>(v >> 16));
  put_u16(out, static_cast<uint16_t>(v));
}

TiffEntry keyed_ascii_entry(uint16_t tag, const std::string& key, const std::string& value) {
  const std::string text = key + ":" + value;
  std::vector<uint8_t> bytes(text.begin(), text.end());
  bytes.push_back(0);
  return {tag, kAscii, std::move(bytes)};
}

TiffEntry user_comment_entry(const std::string& text) {
  std::vector<uint8_t> bytes(kCharsetUnicode.begin(), kCharsetUnicode.end());
  for (char16_t unit : utf8_to_utf16(text)) put_u16(bytes, static_cast<uint16_t>(unit));
  return {kTagUserComment, kUndefined, std::move(bytes)};
}

uint32_t ifd_size(size_t entries) { return 2 + kIfdEntrySize * static_cast<uint32_t>(entries) + 4; }

// Appends one IFD (entries sorted by tag); values over 4 bytes go to `data`, which will start at
// file offset `data_start`.
void write_ifd(std::vector<uint8_t>& out, std::vector<TiffEntry> entries, uint32_t data_start,
               std::vector<uint8_t>& data) {
  std::sort(entries.begin(), entries.end(),
            [](const TiffEntry& a, const TiffEntry& b) { return a.tag < b.tag; });
  put_u16(out, static_cast<uint16_t>(entries.size()));
  for (const auto& entry : entries) {
    put_u16(out, entry.tag);
    put_u16(out, entry.type);
    const bool is_long = entry.type == kLong;
    put_u32(out, static_cast<uint32_t>(is_long ? entry.value.size() / 4 : entry.value.size()));
    if (entry.value.size() <= 4) {
      std::vector<uint8_t> inline_value = entry.value;
      inline_value.resize(4, 0);
      out.insert(out.end(), inline_value.begin(), inline_value.end());
    } else {
      const uint64_t offset = uint64_t{data_start} + data.size();
      if (offset + entry.value.size() > std::numeric_limits<uint32_t>::max()) {
        throw Error(ErrorCode::kInvalidArgument,
                    "image metadata is too large for EXIF (over 4 GiB)");
      }
      put_u32(out, static_cast<uint32_t>(offset));
      data.insert(data.end(), entry.value.begin(), entry.value.end());
      if (data.size() % 2 != 0) data.push_back(0);  // TIFF values start on word boundaries
    }
  }
  put_u32(out, 0);  // no next IFD
}

// ---- reading (either byte order) ----

class TiffReader {
 public:
  explicit TiffReader(std::span<const uint8_t> bytes) : bytes_(bytes) {
    if (bytes_.size() < kTiffHeaderSize) fail("it is shorter than a TIFF header");
    if (bytes_[0] == 'M' && bytes_[1] == 'M') {
      big_endian_ = true;
    } else if (!(bytes_[0] == 'I' && bytes_[1] == 'I')) {
      fail("its byte order mark is neither II nor MM");
    }
    if (u16(2) != kTiffMagic) fail("its TIFF magic number is wrong");
  }

  bool big_endian() const { return big_endian_; }
  uint32_t first_ifd_offset() const { return u32(4); }

  uint16_t u16(uint64_t offset) const {
    check(offset, 2);
    const uint8_t a = bytes_[offset], b = bytes_[offset + 1];
    return static_cast<uint16_t>(big_endian_ ? (a << 8) | b : (b << 8) | a);
  }

  uint32_t u32(uint64_t offset) const {
    const uint32_t first = u16(offset), second = u16(offset + 2);
    return big_endian_ ? (first << 16) | second : (second << 16) | first;
  }

  std::span<const uint8_t> slice(uint64_t offset, uint64_t size) const {
    check(offset, size);
    return bytes_.subspan(offset, size);
  }

  [[noreturn]] static void fail(const std::string& why) {
    throw Error(ErrorCode::kCorruptFile, "the image's EXIF block is broken: " + why);
  }

 private:
  void check(uint64_t offset, uint64_t size) const {
    if (offset > bytes_.size() || size > bytes_.size() - offset)
      fail("an offset points past its end");
  }

  std::span<const uint8_t> bytes_;
  bool big_endian_ = false;
};

struct RawEntry {
  uint16_t tag;
  uint16_t type;
  uint32_t count;
  uint64_t entry_offset;
};

std::vector<RawEntry> read_ifd(const TiffReader& tiff, uint32_t offset) {
  const uint16_t count = tiff.u16(offset);
  tiff.slice(offset, 2 + uint64_t{kIfdEntrySize} * count);  // the table must lie inside the block
  std::vector<RawEntry> entries;
  for (uint32_t i = 0; i < count; ++i) {
    const uint64_t at = uint64_t{offset} + 2 + uint64_t{kIfdEntrySize} * i;
    entries.push_back({tiff.u16(at), tiff.u16(at + 2), tiff.u32(at + 4), at});
  }
  return entries;
}

bool is_byte_sized(const RawEntry& entry) {
  return entry.type == kByte || entry.type == kAscii || entry.type == kUndefined;
}

// The bytes of an entry of a byte-sized type: inline up to 4 bytes, else at the stored offset.
std::span<const uint8_t> byte_value(const TiffReader& tiff, const RawEntry& entry) {
  const uint64_t value_offset =
      entry.count <= 4 ? entry.entry_offset + 8 : tiff.u32(entry.entry_offset + 8);
  return tiff.slice(value_offset, entry.count);
}

std::string_view as_chars(std::span<const uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::string_view strip_trailing_nuls(std::string_view text) {
  while (!text.empty() && text.back() == '\0') text.remove_suffix(1);
  return text;
}

// Without a byte-order mark, writers disagree: the EXIF standard means the block's byte order,
// A1111 (piexif) always writes big-endian even into little-endian blocks. Mostly-ASCII text
// settles it: its zero bytes are the high bytes, first in each pair when big-endian.
bool guess_big_endian(std::span<const uint8_t> bytes, bool block_big_endian) {
  size_t zeros_first = 0, zeros_second = 0;
  for (size_t i = 0; i + 1 < bytes.size(); i += 2) {
    zeros_first += bytes[i] == 0;
    zeros_second += bytes[i + 1] == 0;
  }
  if (zeros_first == zeros_second) return block_big_endian;
  return zeros_first > zeros_second;
}

std::string decode_utf16(std::span<const uint8_t> bytes, bool block_big_endian) {
  bool big_endian = false;
  if (bytes.size() >= 2 &&
      ((bytes[0] == 0xFE && bytes[1] == 0xFF) || (bytes[0] == 0xFF && bytes[1] == 0xFE))) {
    big_endian = bytes[0] == 0xFE;
    bytes = bytes.subspan(2);
  } else {
    big_endian = guess_big_endian(bytes, block_big_endian);
  }
  std::u16string units;
  for (size_t i = 0; i + 1 < bytes.size(); i += 2) {
    units.push_back(static_cast<char16_t>(big_endian ? (bytes[i] << 8) | bytes[i + 1]
                                                     : (bytes[i + 1] << 8) | bytes[i]));
  }
  while (!units.empty() && units.back() == u'\0') units.pop_back();
  return utf16_to_utf8(units);
}

std::string decode_user_comment(std::span<const uint8_t> value, bool big_endian) {
  const std::string_view charset = as_chars(value.first(std::min(value.size(), kCharsetSize)));
  if (charset == kCharsetUnicode) return decode_utf16(value.subspan(kCharsetSize), big_endian);
  const auto text = charset.size() == kCharsetSize ? value.subspan(kCharsetSize) : value;
  return utf8_or_latin1_to_utf8(strip_trailing_nuls(as_chars(text)));
}

bool is_blank_text(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

// "<key>:<value>" with a key of [A-Za-z0-9_], as written by build_exif_block and ComfyUI.
std::optional<std::pair<std::string, std::string>> split_keyed_text(std::string_view text) {
  const size_t colon = text.find(':');
  if (colon == 0 || colon == std::string_view::npos) return std::nullopt;
  const std::string_view key = text.substr(0, colon);
  const bool valid_key = std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
  if (!valid_key) return std::nullopt;
  return std::make_pair(std::string(key), utf8_or_latin1_to_utf8(text.substr(colon + 1)));
}

}  // namespace

std::vector<uint8_t> build_exif_block(const EmbeddedMetadata& metadata) {
  validate_embedded_metadata(metadata);
  std::vector<TiffEntry> ifd0;
  std::vector<TiffEntry> exif_ifd;
  size_t other_entries = 0;
  for (const auto& [key, value] : metadata.text) {
    if (key == "parameters") {
      exif_ifd.push_back(user_comment_entry(value));
    } else if (key == "prompt") {
      ifd0.push_back(keyed_ascii_entry(kTagModel, key, value));
    } else if (other_entries < kOtherEntryTags.size()) {
      ifd0.push_back(keyed_ascii_entry(kOtherEntryTags[other_entries++], key, value));
    } else {
      throw Error(ErrorCode::kInvalidArgument,
                  "EXIF metadata holds \"parameters\", \"prompt\" and at most three more entries; "
                  "'" +
                      key + "' is one too many",
                  {{"key", key}});
    }
  }
  if (ifd0.empty() && exif_ifd.empty()) return {};

  const size_t ifd0_entries = ifd0.size() + (exif_ifd.empty() ? 0 : 1);
  const uint32_t exif_ifd_offset = kTiffHeaderSize + ifd_size(ifd0_entries);
  const uint32_t data_start = exif_ifd_offset + (exif_ifd.empty() ? 0 : ifd_size(exif_ifd.size()));
  if (!exif_ifd.empty()) {
    std::vector<uint8_t> pointer;
    put_u32(pointer, exif_ifd_offset);
    ifd0.push_back({kTagExifIfdPointer, kLong, std::move(pointer)});
  }

  std::vector<uint8_t> out{'M', 'M'};
  put_u16(out, kTiffMagic);
  put_u32(out, kTiffHeaderSize);
  std::vector<uint8_t> data;
  write_ifd(out, std::move(ifd0), data_start, data);
  if (!exif_ifd.empty()) write_ifd(out, std::move(exif_ifd), data_start, data);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

ExifContents parse_exif_block(std::span<const uint8_t> block) {
  if (as_chars(block.first(std::min(block.size(), kJpegExifPrefix.size()))) == kJpegExifPrefix) {
    block = block.subspan(kJpegExifPrefix.size());
  }
  const TiffReader tiff(block);
  ExifContents contents;
  std::vector<std::pair<uint16_t, std::pair<std::string, std::string>>> keyed;
  for (const RawEntry& entry : read_ifd(tiff, tiff.first_ifd_offset())) {
    const bool keyed_tag =
        std::find(kKeyedTags.begin(), kKeyedTags.end(), entry.tag) != kKeyedTags.end();
    if (keyed_tag && entry.type == kAscii) {
      if (auto pair = split_keyed_text(strip_trailing_nuls(as_chars(byte_value(tiff, entry))))) {
        keyed.emplace_back(entry.tag, std::move(*pair));
      }
    } else if (entry.tag == kTagOrientation && entry.type == kShort && entry.count >= 1) {
      const uint16_t orientation = tiff.u16(entry.entry_offset + 8);
      if (orientation >= 1 && orientation <= 8) contents.orientation = orientation;
    } else if (entry.tag == kTagExifIfdPointer && (entry.type == kLong || entry.type == kIfd)) {
      for (const RawEntry& exif_entry : read_ifd(tiff, tiff.u32(entry.entry_offset + 8))) {
        if (exif_entry.tag != kTagUserComment || !is_byte_sized(exif_entry)) continue;
        std::string comment = decode_user_comment(byte_value(tiff, exif_entry), tiff.big_endian());
        if (!is_blank_text(comment))
          contents.metadata.text.emplace_back("parameters", std::move(comment));
      }
    }
  }
  // Model, Make, ImageDescription, DocumentName: the order build_exif_block fills them in.
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (auto& [tag, pair] : keyed) contents.metadata.text.push_back(std::move(pair));
  return contents;
}

}  // namespace df

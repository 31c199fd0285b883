// Format dispatch, format names and atomic image files.
#include "image/image.h"


#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <span>

#include "core/error.h"
#include "core/files.h"
#include "image/codec_support.h"
#include "image/jpeg_codec.h"
#include "image/png_codec.h"
#include "image/webp_codec.h"

namespace df {
namespace {

constexpr std::array<uint8_t, 8> kPngSignature{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
constexpr std::array<uint8_t, 3> kJpegSignature{0xFF, 0xD8, 0xFF};

bool starts_with(std::span<const uint8_t> bytes, std::span<const uint8_t> prefix) {
  return bytes.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), bytes.begin());
}

bool is_webp(std::span<const uint8_t> bytes) {
  return bytes.size() >= 12 && std::memcmp(bytes.data(), "RIFF", 4) == 0 &&
         std::memcmp(bytes.data() + 8, "WEBP", 4) == 0;
}

DecodedImage decode_any(const std::vector<uint8_t>& bytes) {
  if (starts_with(bytes, kPngSignature)) return decode_png(bytes);
  if (starts_with(bytes, kJpegSignature)) return decode_jpeg(bytes);
  if (is_webp(bytes)) return decode_webp(bytes);
  throw Error(ErrorCode::kCorruptFile, "the data is not a PNG, JPEG or WebP image");
}

}  // namespace

ImageFormat image_format_from_name(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "png") return ImageFormat::kPng;
  if (lower == "jpeg" || lower == "jpg") return ImageFormat::kJpeg;
  if (lower == "webp") return ImageFormat::kWebp;
  throw Error(ErrorCode::kInvalidArgument,
              "unknown image format '" + name + "': use png, jpeg or webp", {{"format", name}});
}

std::string file_extension(ImageFormat format) {
  switch (format) {
    case ImageFormat::kPng:
      return "png";
    case ImageFormat::kJpeg:
      return "jpg";
    case ImageFormat::kWebp:
      return "webp";
  }
  throw Error(ErrorCode::kInvalidArgument, "unknown image format");
}

std::string content_type(ImageFormat format) {
  switch (format) {
    case ImageFormat::kPng:
      return "image/png";
    case ImageFormat::kJpeg:
      return "image/jpeg";
    case ImageFormat::kWebp:
      return "image/webp";
  }
  throw Error(ErrorCode::kInvalidArgument, "unknown image format");
}

std::vector<uint8_t> encode_image(const Image8& image, ImageFormat format,
                                  const EmbeddedMetadata& metadata, int quality) {
  switch (format) {
    case ImageFormat::kPng:
      return encode_png(image, metadata);
    case ImageFormat::kJpeg:
      return encode_jpeg(image, metadata, quality);
    case ImageFormat::kWebp:
      return encode_webp(image, metadata, quality);
  }
  throw Error(ErrorCode::kInvalidArgument, "unknown image format");
}

void write_image_file(const std::string& path, const Image8& image, ImageFormat format,
                      const EmbeddedMetadata& metadata) {
  write_file_atomically(path, encode_image(image, format, metadata));
}

Image8 decode_image(const std::vector<uint8_t>& bytes) { return decode_any(bytes).image; }

Image8 read_image_file(const std::string& path) { return decode_image(read_file_bytes(path)); }

EmbeddedMetadata read_embedded_metadata(const std::vector<uint8_t>& bytes) {
  return decode_any(bytes).metadata;
}

}  // namespace df

// Shared validation, errors and EXIF handling of the image codecs.
#include "image/codec_support.h"

#include <string>
#include <utility>

#include "core/error.h"
#include "image/exif_block.h"
#include "image/orientation.h"

namespace df {

void validate_image(const Image8& image) {
  if (image.width <= 0 || image.height <= 0) {
    throw Error(ErrorCode::kInvalidArgument, "cannot encode an image of size " +
                                                 std::to_string(image.width) + "x" +
                                                 std::to_string(image.height));
  }
  if (image.channels != 3 && image.channels != 4) {
    throw Error(ErrorCode::kInvalidArgument,
                "cannot encode an image with " + std::to_string(image.channels) +
                    " channels: only RGB (3) and RGBA (4) are supported");
  }
  const uint64_t expected =
      uint64_t(image.width) * uint64_t(image.height) * uint64_t(image.channels);
  if (image.pixels.size() != expected) {
    throw Error(ErrorCode::kInvalidArgument,
                "image pixel buffer holds " + std::to_string(image.pixels.size()) +
                    " bytes, but its size and channels need " + std::to_string(expected));
  }
}

void validate_lossy_encode(std::string_view format, const Image8& image, int quality,
                           int max_side) {
  validate_image(image);
  if (quality < 1 || quality > 100) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(format) + " quality must be 1..100, not " + std::to_string(quality));
  }
  if (image.width > max_side || image.height > max_side) {
    throw Error(ErrorCode::kInvalidArgument, std::string(format) + " images are at most " +
                                                 std::to_string(max_side) + " pixels on a side");
  }
}

void check_decoded_size(std::string_view format, int64_t width, int64_t height) {
  if (width <= 0 || height <= 0) throw_corrupt_image(format, "it declares an empty image");
  if (width > kMaxDecodedSide || height > kMaxDecodedSide) {
    throw Error(ErrorCode::kUnsupported,
                std::string(format) + " image is " + std::to_string(width) + "x" +
                    std::to_string(height) + "; images over " + std::to_string(kMaxDecodedSide) +
                    " pixels on a side are not supported",
                {{"width", width}, {"height", height}});
  }
}

void throw_corrupt_image(std::string_view format, std::string_view why) {
  throw Error(ErrorCode::kCorruptFile,
              "the " + std::string(format) + " image is corrupt or truncated: " + std::string(why));
}

void apply_exif_block(std::span<const uint8_t> exif_block, DecodedImage& decoded) {
  if (exif_block.empty()) return;
  ExifContents contents = parse_exif_block(exif_block);
  decoded.metadata = std::move(contents.metadata);
  decoded.image = apply_exif_orientation(std::move(decoded.image), contents.orientation);
}

}  // namespace df

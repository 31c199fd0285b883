// Pieces shared by the PNG, JPEG and WebP codecs: decode results, size limits, error handling.
#pragma once

#include <csetjmp>
#include <cstdint>
#include <span>
#include <string_view>

#include "image/embedded_metadata.h"
#include "image/image8.h"

namespace df {

struct DecodedImage {
  Image8 image;               // EXIF orientation already applied
  EmbeddedMetadata metadata;  // text entries in file order
};

// Decoding refuses images larger than this on a side: a corrupt or hostile header must not make
// the service allocate gigabytes.
constexpr int64_t kMaxDecodedSide = 16384;

// Throws Error(kInvalidArgument) unless `image` has positive sizes, 3 or 4 channels and exactly
// width * height * channels bytes of pixels.
void validate_image(const Image8& image);

// validate_image, and Error(kInvalidArgument) unless `quality` is 1..100 and the image is at most
// `max_side` pixels on a side: the arguments of a lossy `format` encoder.
void validate_lossy_encode(std::string_view format, const Image8& image, int quality,
                           int max_side);

// Throws Error(kUnsupported) when a file declares an image over kMaxDecodedSide on a side, and
// Error(kCorruptFile) when it declares an empty one.
void check_decoded_size(std::string_view format, int64_t width, int64_t height);

[[noreturn]] void throw_corrupt_image(std::string_view format, std::string_view why);

// Takes the metadata of `decoded` from `exif_block` (see parse_exif_block) and turns its image
// upright per the block's orientation; leaves `decoded` as it is when the block is empty.
void apply_exif_block(std::span<const uint8_t> exif_block, DecodedImage& decoded);

// Runs `step`; returns false when a C library's error handler longjmp'ed to `jump` instead.
// The jump skips destructors: `step` must keep no object that has one alive across library calls
// (keep containers outside and capture them by reference), and must not throw through C frames.
template <typename Step>
bool run_guarded(std::jmp_buf& jump, Step&& step) {
  if (setjmp(jump) != 0) return false;
  step();
  return true;
}

}  // namespace df

// JPEG encoding and decoding with EXIF metadata (libjpeg-turbo).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "image/codec_support.h"

namespace df {

// Baseline JPEG at `quality` (1..100) with the metadata in an EXIF APP1 segment (see
// build_exif_block). Alpha is dropped. JPEG caps that segment at 64 KiB: metadata that does not
// fit (a large workflow, say) throws Error(kInvalidArgument); PNG and WebP have no such limit.
std::vector<uint8_t> encode_jpeg(const Image8& image, const EmbeddedMetadata& metadata,
                                 int quality);

// Any JPEG (color, grayscale, CMYK; baseline or progressive) as RGB, upright per its EXIF
// orientation; metadata from its EXIF segment. Truncated or damaged entropy data is corrupt.
DecodedImage decode_jpeg(std::span<const uint8_t> bytes);

}  // namespace df

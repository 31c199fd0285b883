// WebP encoding and decoding with EXIF metadata (libwebp, libwebpmux, libwebpdemux).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "image/codec_support.h"

namespace df {

// Lossy WebP at `quality` (1..100), alpha kept, metadata in an EXIF chunk (see build_exif_block;
// no size limit short of 4 GiB, unlike JPEG).
std::vector<uint8_t> encode_webp(const Image8& image, const EmbeddedMetadata& metadata,
                                 int quality);

// A still WebP (lossy or lossless) as RGB, or RGBA when it has alpha, upright per its EXIF
// orientation; metadata from its EXIF chunk. Animated WebP throws Error(kUnsupported).
DecodedImage decode_webp(std::span<const uint8_t> bytes);

}  // namespace df

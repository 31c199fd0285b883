// PNG encoding and decoding with text-chunk metadata (libpng).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "image/codec_support.h"

namespace df {

// Lossless RGB/RGBA PNG. Each metadata entry becomes a tEXt chunk (Latin-1, as the PNG
// specification and ComfyUI's loader want) or, when its value has characters beyond Latin-1, an
// uncompressed iTXt chunk (UTF-8), as Pillow, A1111 and ComfyUI write them; chunks precede IDAT.
// `compression_level` is zlib's 0..9: ComfyUI saves files at 4 and streams images at 1.
inline constexpr int kPngSaveCompressionLevel = 4;
inline constexpr int kPngStreamCompressionLevel = 1;
std::vector<uint8_t> encode_png(const Image8& image, const EmbeddedMetadata& metadata,
                                int compression_level = kPngSaveCompressionLevel);

// Any PNG (1-16 bits, palette, gray, alpha, interlaced) as 8-bit RGB, or RGBA when it has alpha
// or transparency. 16-bit samples keep their high byte, as Pillow does. Metadata: tEXt, zTXt and
// iTXt chunks before and after the image data. An eXIf orientation is applied.
DecodedImage decode_png(std::span<const uint8_t> bytes);

}  // namespace df

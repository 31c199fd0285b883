// Animated WebP encoding (libwebpmux's WebPAnimEncoder), as ComfyUI's SaveAnimatedWEBP writes it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "image/embedded_metadata.h"
#include "image/image8.h"

namespace df {

struct WebpAnimationOptions {
  double fps = 6.0;       // every frame lasts int(1000 / fps) milliseconds
  bool lossless = true;
  int quality = 80;       // 0..100
  int method = 4;         // 0 (fastest) .. 6 (slowest)
};

// One animated WebP of `frames` (all the same size, RGB or RGBA), looping forever, with
// `metadata` in an EXIF chunk (see build_exif_block). Keyframe spacing follows Pillow's defaults
// (kmin 9 / kmax 17 lossless, 3 / 5 lossy), which ComfyUI's files are written with.
// Throws Error(kInvalidArgument) for no frames, frames of different sizes, or options out of range.
std::vector<uint8_t> encode_animated_webp(std::span<const Image8> frames,
                                          const WebpAnimationOptions& options,
                                          const EmbeddedMetadata& metadata);

}  // namespace df

// An 8-bit-per-channel raster image: the pixel currency between the engine, nodes and image files.
#pragma once

#include <cstdint>
#include <vector>

namespace df {

// Row-major, interleaved, no padding: pixels.size() == width * height * channels.
struct Image8 {
  int width = 0;
  int height = 0;
  int channels = 3;  // 3 = RGB, 4 = RGBA (straight, not premultiplied alpha)
  std::vector<uint8_t> pixels;
};

}  // namespace df

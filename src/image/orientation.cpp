// EXIF orientation: remapping pixels so the image is upright.
#include "image/orientation.h"

#include <algorithm>
#include <utility>

namespace df {
namespace {

// The stored pixel shown at (x, y) of the upright image, for a stored image of width w, height h.
std::pair<int, int> source_pixel(int orientation, int x, int y, int w, int h) {
  switch (orientation) {
    case 2:
      return {w - 1 - x, y};
    case 3:
      return {w - 1 - x, h - 1 - y};
    case 4:
      return {x, h - 1 - y};
    case 5:
      return {y, x};
    case 6:
      return {y, h - 1 - x};
    case 7:
      return {w - 1 - y, h - 1 - x};
    case 8:
      return {w - 1 - y, x};
    default:
      return {x, y};
  }
}

}  // namespace

Image8 apply_exif_orientation(Image8 image, int orientation) {
  if (orientation < 2 || orientation > 8) return image;
  const bool swaps_axes = orientation >= 5;
  Image8 upright;
  upright.width = swaps_axes ? image.height : image.width;
  upright.height = swaps_axes ? image.width : image.height;
  upright.channels = image.channels;
  upright.pixels.resize(image.pixels.size());
  const size_t channels = static_cast<size_t>(image.channels);
  for (int y = 0; y < upright.height; ++y) {
    for (int x = 0; x < upright.width; ++x) {
      const auto [sx, sy] = source_pixel(orientation, x, y, image.width, image.height);
      const auto* from = &image.pixels[(size_t(sy) * size_t(image.width) + size_t(sx)) * channels];
      auto* to = &upright.pixels[(size_t(y) * size_t(upright.width) + size_t(x)) * channels];
      std::copy_n(from, channels, to);
    }
  }
  return upright;
}

}  // namespace df

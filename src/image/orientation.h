// Turning a decoded image upright according to its EXIF Orientation tag.
#pragma once

#include "image/image8.h"

namespace df {

// Returns `image` as it is meant to be displayed for EXIF orientation 1..8 (1: as stored,
// 2: mirrored, 3: rotated 180°, 4: flipped, 5: transposed, 6: rotated 90° clockwise,
// 7: transversed, 8: rotated 90° counter-clockwise), the transform Pillow's exif_transpose applies.
Image8 apply_exif_orientation(Image8 image, int orientation);

}  // namespace df

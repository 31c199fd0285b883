// Helpers shared by the image unit tests: synthetic images, sample generation parameters and
// error-code expectations.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "core/error.h"
#include "test_support.h"
#include "image/generation_parameters.h"
#include "image/image8.h"

namespace df::image_test {

// A smooth image (gradients plus a soft blob) that lossy codecs reproduce closely.
inline Image8 gradient_image(int width, int height, int channels) {
  Image8 image{width, height, channels, {}};
  image.pixels.resize(size_t(width) * size_t(height) * size_t(channels));
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = &image.pixels[(size_t(y) * size_t(width) + size_t(x)) * size_t(channels)];
      p[0] = static_cast<uint8_t>(255 * x / (width - 1));
      p[1] = static_cast<uint8_t>(255 * y / (height - 1));
      p[2] = static_cast<uint8_t>(128 + 100 * (x - width / 2) * (y - height / 2) /
                                            (width * height / 4 + 1));
      if (channels == 4) p[3] = static_cast<uint8_t>(255 - 200 * x / (width - 1));
    }
  }
  return image;
}

// Pseudo-random pixels (a fixed LCG): every byte matters, for lossless checks.
inline Image8 noise_image(int width, int height, int channels, uint32_t seed = 1) {
  Image8 image{width, height, channels, {}};
  image.pixels.resize(size_t(width) * size_t(height) * size_t(channels));
  for (auto& byte : image.pixels) {
    seed = seed * 1664525u + 1013904223u;
    byte = static_cast<uint8_t>(seed >> 24);
  }
  return image;
}

inline double mean_abs_difference(const Image8& a, const Image8& b) {
  EXPECT_EQ(a.pixels.size(), b.pixels.size());
  if (a.pixels.size() != b.pixels.size() || a.pixels.empty()) return 1e9;
  double total = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i)
    total += std::abs(int(a.pixels[i]) - int(b.pixels[i]));
  return total / double(a.pixels.size());
}

// Generation parameters with non-ASCII prompts, a seed beyond 32 bits, a full model hash and a
// denoise strength: every field the A1111 text carries.
inline GenerationParameters unicode_parameters() {
  GenerationParameters p;
  p.prompt = "桜の木の下の猫, cherry blossoms 🌸, café";
  p.negative_prompt = "lowres, ぼやけた";
  p.steps = 20;
  p.sampler = "dpmpp_2m";
  p.scheduler = "karras";
  p.cfg = 7.5;
  p.seed = 156680208700286;
  p.width = 64;
  p.height = 48;
  p.model_name = "v1-5-pruned-emaonly";
  p.model_hash = "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa";
  p.denoise = 0.6;
  return p;
}

using test::error_code_of;

}  // namespace df::image_test

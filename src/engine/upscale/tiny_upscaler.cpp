// A tiny random-weight ×4 ESRGAN (RRDBNet) in the old sequential key layout.
#include "engine/upscale/tiny_upscaler.h"

#include <vector>

#include "engine/tiny_addons.h"
#include "engine/tiny_model.h"
#include "engine/weight_layout.h"

namespace df::engine {
namespace {

constexpr int64_t kChannels = 3;
constexpr int64_t kFeatures = 16;
constexpr int64_t kGrowth = 32;
constexpr int kBlocks = 1;
constexpr int kUpsamplings = 2;  // ×4
constexpr double kStd = 0.05;

std::vector<TensorShape> rrdb_layout() {
  std::vector<TensorShape> layout;
  add_conv_shapes(layout, "model.0", kFeatures, kChannels, 3);
  for (int block = 0; block < kBlocks; ++block) {
    for (int dense = 1; dense <= 3; ++dense) {
      const std::string prefix =
          "model.1.sub." + std::to_string(block) + ".RDB" + std::to_string(dense);
      for (int conv = 1; conv <= 5; ++conv) {
        add_conv_shapes(layout, prefix + ".conv" + std::to_string(conv) + ".0",
                        conv < 5 ? kGrowth : kFeatures, kFeatures + (conv - 1) * kGrowth, 3);
      }
    }
  }
  add_conv_shapes(layout, "model.1.sub." + std::to_string(kBlocks), kFeatures, kFeatures, 3);
  for (int k = 1; k <= kUpsamplings; ++k) {
    add_conv_shapes(layout, "model." + std::to_string(3 * k), kFeatures, kFeatures, 3);
  }
  add_conv_shapes(layout, "model." + std::to_string(3 * kUpsamplings + 2), kFeatures, kFeatures, 3);
  add_conv_shapes(layout, "model." + std::to_string(3 * kUpsamplings + 4), kChannels, kFeatures, 3);
  return layout;
}

}  // namespace

void write_tiny_upscaler(const std::string& path, Family /*family*/, uint64_t seed) {
  write_test_file(path, "upscale model", tiny_random_tensors(rrdb_layout(), seed, kStd), {});
}

}  // namespace df::engine

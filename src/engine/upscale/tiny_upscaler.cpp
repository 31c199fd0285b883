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

void add_conv(std::vector<TensorShape>& layout, const std::string& name, int64_t out, int64_t in) {
  layout.push_back({name + ".weight", {out, in, 3, 3}});
  layout.push_back({name + ".bias", {out}});
}

std::vector<TensorShape> rrdb_layout() {
  std::vector<TensorShape> layout;
  add_conv(layout, "model.0", kFeatures, kChannels);
  for (int block = 0; block < kBlocks; ++block) {
    for (int dense = 1; dense <= 3; ++dense) {
      const std::string prefix =
          "model.1.sub." + std::to_string(block) + ".RDB" + std::to_string(dense);
      for (int conv = 1; conv <= 5; ++conv) {
        add_conv(layout, prefix + ".conv" + std::to_string(conv) + ".0",
                 conv < 5 ? kGrowth : kFeatures, kFeatures + (conv - 1) * kGrowth);
      }
    }
  }
  add_conv(layout, "model.1.sub." + std::to_string(kBlocks), kFeatures, kFeatures);
  for (int k = 1; k <= kUpsamplings; ++k) {
    add_conv(layout, "model." + std::to_string(3 * k), kFeatures, kFeatures);
  }
  add_conv(layout, "model." + std::to_string(3 * kUpsamplings + 2), kFeatures, kFeatures);
  add_conv(layout, "model." + std::to_string(3 * kUpsamplings + 4), kChannels, kFeatures);
  return layout;
}

}  // namespace

void write_tiny_upscaler(const std::string& path, Family /*family*/, uint64_t seed) {
  write_test_file(path, "upscale model", tiny_random_tensors(rrdb_layout(), seed, kStd), {});
}

}  // namespace df::engine

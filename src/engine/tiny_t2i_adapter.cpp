// Writes tiny T2I adapters in TencentARC's original layout for the tiny test pipelines.
#include "engine/tiny_t2i_adapter.h"

#include <vector>

#include "engine/tiny_addons.h"
#include "engine/tiny_model.h"

namespace df::engine {
namespace {

// Drawn wider than the pipelines' 0.02 so that the adapter visibly changes tiny images.
constexpr double kAdapterStd = 0.1;
constexpr int64_t kHintChannels = 3;
constexpr int kBlocksPerStage = 2;

std::vector<TensorShape> tiny_adapter_layout(Family family) {
  const std::vector<int>& channels = tiny_pipeline_config(family).unet.block_out_channels;
  const int64_t unshuffle = family == Family::kSDXL ? 16 : 8;
  std::vector<TensorShape> layout;
  add_conv_shapes(layout, "conv_in", channels[0], kHintChannels * unshuffle * unshuffle, 3);
  for (size_t stage = 0; stage < channels.size(); ++stage) {
    for (int j = 0; j < kBlocksPerStage; ++j) {
      const std::string block = "body." + std::to_string(stage * kBlocksPerStage + j);
      const int64_t c = channels[stage];
      if (j == 0 && stage > 0 && channels[stage - 1] != c) {
        add_conv_shapes(layout, block + ".in_conv", c, channels[stage - 1], 1);
      }
      add_conv_shapes(layout, block + ".block1", c, c, 3);
      add_conv_shapes(layout, block + ".block2", c, c, 1);
    }
  }
  return layout;
}

}  // namespace

void write_tiny_t2i_adapter(const std::string& path, Family family, uint64_t seed) {
  write_test_file(path, "T2I adapter",
                  tiny_random_tensors(tiny_adapter_layout(family), seed, kAdapterStd), {});
}

}  // namespace df::engine

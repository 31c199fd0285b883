// The pre-warm graph: the checkpoint loader, its VAE decoding an empty latent of the family's
// channels, and a preview (the output that makes ComfyUI's semantics run the loader).
#include <gtest/gtest.h>

#include "worker/prewarm.h"

namespace df::worker {
namespace {

TEST(Prewarm, TheGraphLoadsTheCheckpointAndDecodesAnEmptyLatentIntoAPreview) {
  const auto graph = prewarm_graph({"sd15/model.safetensors", "sd1"});
  EXPECT_EQ(graph["1"]["class_type"], "CheckpointLoaderSimple");
  EXPECT_EQ(graph["1"]["inputs"]["ckpt_name"], "sd15/model.safetensors");
  EXPECT_EQ(graph["2"]["class_type"], "EmptyLatentImage");
  EXPECT_EQ(graph["2"]["inputs"], (nlohmann::json{{"width", 64}, {"height", 64}, {"batch_size", 1}}));
  EXPECT_EQ(graph["3"]["class_type"], "VAEDecode");
  EXPECT_EQ(graph["3"]["inputs"]["samples"], (nlohmann::json{"2", 0}));
  EXPECT_EQ(graph["3"]["inputs"]["vae"], (nlohmann::json{"1", 2}));
  EXPECT_EQ(graph["4"]["class_type"], "PreviewImage");
  EXPECT_EQ(graph["4"]["inputs"]["images"], (nlohmann::json{"3", 0}));
}

TEST(Prewarm, SixteenChannelFamiliesGetAnSd3Latent) {
  for (const std::string family : {"flux", "flux_schnell", "sd3", "zimage"}) {
    EXPECT_EQ(prewarm_graph({"m.safetensors", family})["2"]["class_type"], "EmptySD3LatentImage") << family;
  }
  for (const std::string family : {"sd1", "sd2", "sdxl", "sdxl_refiner"}) {
    EXPECT_EQ(prewarm_graph({"m.safetensors", family})["2"]["class_type"], "EmptyLatentImage") << family;
  }
}

}  // namespace
}  // namespace df::worker

// LoRA on a DiT network through ModelPatcher: diffusers names patch their rows of a fused weight,
// the patched copy shares every other tensor and the cached model is left unchanged.
#include <gtest/gtest.h>

#include <memory>

#include "engine/adapters/lora.h"
#include "engine/checkpoint_bundle.h"
#include "engine/family/zimage/zimage_layout.h"
#include "engine/family/zimage/zimage_transformer.h"
#include "engine/model_patcher.h"

namespace df::engine {
namespace {

constexpr const char* kQkv = "layers.0.attention.qkv.weight";

std::shared_ptr<const DiffusionModel> tiny_zimage_model(const zimage::ZImageConfig& config) {
  at::manual_seed(0);
  TensorMap tensors;
  for (const TensorShape& tensor : zimage::zimage_transformer_layout(config)) {
    tensors.emplace(tensor.name, at::randn(tensor.shape) * 0.1);
  }
  auto network = std::make_shared<const zimage::ZImageTransformer>(config, Weights(tensors));
  return std::make_shared<const DiffusionModel>(
      DiffusionModel{Family::kZImage, std::nullopt, network, NoiseSchedule::discrete_flow(3.0, 1.0),
                     LatentFormat{}, false, RuntimePlacement{}});
}

// A rank-2 LoRA on the to_k rows of the first layer's fused qkv, in diffusers names.
TensorMap to_k_lora(int64_t dim) {
  return {{"diffusion_model.layers.0.attention.to_k.lora_A.weight", at::randn({2, dim})},
          {"diffusion_model.layers.0.attention.to_k.lora_B.weight", at::randn({dim, 2})}};
}

TEST(DitLora, DiffusersNamesPatchTheirRowsOfAFusedWeightOnACopy) {
  const zimage::ZImageConfig config = zimage::tiny_zimage_config();
  const auto base = tiny_zimage_model(config);
  const TensorMap lora = to_k_lora(config.dim);
  const LoraPatches patches = lora_patches(lora, lora_targets(base.get(), nullptr), 0.5, 0.0);
  ASSERT_TRUE(patches.unmatched.empty());
  ASSERT_TRUE(patches.rejected.empty());
  const at::Tensor original = base->network->weights().get(kQkv).clone();

  const auto patched = ModelPatcher(base).with_weight_patches(patches.unet).patched();

  const Weights& weights = patched->network->weights();
  const at::Tensor qkv = weights.get(kQkv);
  const int64_t q_rows = config.n_heads * config.head_dim();
  const int64_t k_rows = config.n_kv_heads * config.head_dim();
  const at::Tensor delta =
      0.5 * at::matmul(lora.at("diffusion_model.layers.0.attention.to_k.lora_B.weight"),
                       lora.at("diffusion_model.layers.0.attention.to_k.lora_A.weight"));
  EXPECT_TRUE(at::allclose(qkv.narrow(0, q_rows, k_rows), original.narrow(0, q_rows, k_rows) + delta,
                           1e-5, 1e-6));
  EXPECT_TRUE(at::equal(qkv.narrow(0, 0, q_rows), original.narrow(0, 0, q_rows)));
  EXPECT_TRUE(at::equal(qkv.narrow(0, q_rows + k_rows, k_rows),
                        original.narrow(0, q_rows + k_rows, k_rows)));
  // The cached model is unchanged; every unpatched tensor is shared, not copied.
  EXPECT_TRUE(at::equal(base->network->weights().get(kQkv), original));
  EXPECT_NE(patched->network, base->network);
  for (const std::string& key : base->network->weights().keys()) {
    if (key == kQkv) continue;
    EXPECT_TRUE(weights.get(key).is_same(base->network->weights().get(key))) << key;
  }
}

TEST(DitLora, MisshapenFactorsAreRejectedAndLeaveTheWeight) {
  const zimage::ZImageConfig config = zimage::tiny_zimage_config();
  const auto base = tiny_zimage_model(config);
  const TensorMap lora = to_k_lora(config.dim + 1);  // one input column too many
  const LoraPatches patches = lora_patches(lora, lora_targets(base.get(), nullptr), 1.0, 0.0);
  EXPECT_EQ(patches.rejected.size(), 1u);
  EXPECT_TRUE(patches.unet.empty());
}

}  // namespace
}  // namespace df::engine

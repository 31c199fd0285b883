// The DiT LoRA key map: kohya, BFL/ComfyUI and diffusers names, and row pieces in fused weights;
// the tiny DiT LoRAs of create-tiny use names of that map.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "engine/adapters/dit_lora_names.h"
#include "engine/adapters/lora_tiny.h"
#include "engine/family/flux/flux_layout.h"
#include "engine/family/sd3/sd3_tiny.h"
#include "engine/family/zimage/zimage_layout.h"
#include "engine/family/zimage/zimage_tiny.h"
#include "engine/safetensors_file.h"
#include "test_support.h"

namespace df::engine {
namespace {

std::vector<std::string> names_of(const std::vector<TensorShape>& layout) {
  std::vector<std::string> names;
  for (const TensorShape& tensor : layout) names.push_back(tensor.name);
  return names;
}

DitLoraNames flux_names() {
  const flux::FluxConfig config;  // FLUX.1 dev: hidden 3072, MLP 12288
  return dit_lora_names(Family::kFlux, names_of(flux::flux_transformer_layout(config)),
                        flux_diffusers_links(config));
}

DitLoraNames sd3_names() {
  const sd3::Sd3Config config;  // SD3 Medium: hidden 1536
  return dit_lora_names(Family::kSD3, names_of(sd3::sd3_transformer_layout(config)),
                        sd3_diffusers_links(config));
}

zimage::ZImageConfig grouped_query_zimage() {
  zimage::ZImageConfig config;
  config.n_kv_heads = 10;  // k and v blocks narrower than q: 30 * 128 = 3840, 10 * 128 = 1280
  return config;
}

DitLoraNames zimage_names() {
  const zimage::ZImageConfig config = grouped_query_zimage();
  return dit_lora_names(Family::kZImage, names_of(zimage::zimage_transformer_layout(config)),
                        zimage_diffusers_links(config));
}

const DitLoraTarget& target_of(const DitLoraNames& names, const std::string& name) {
  auto it = names.find(name);
  if (it == names.end()) throw std::runtime_error("no LoRA name " + name);
  return it->second;
}

void expect_whole(const DitLoraNames& names, const std::string& name, const std::string& key) {
  SCOPED_TRACE(name);
  const DitLoraTarget& target = target_of(names, name);
  EXPECT_EQ(target.key, key);
  EXPECT_TRUE(target.pieces.empty());
}

void expect_pieces(const DitLoraNames& names, const std::string& name, const std::string& key,
                   const std::vector<RowPiece>& pieces, int64_t source_rows) {
  SCOPED_TRACE(name);
  const DitLoraTarget& target = target_of(names, name);
  EXPECT_EQ(target.key, key);
  EXPECT_EQ(target.source_rows, source_rows);
  ASSERT_EQ(target.pieces.size(), pieces.size());
  for (size_t i = 0; i < pieces.size(); ++i) {
    EXPECT_EQ(target.pieces[i].target_row, pieces[i].target_row) << i;
    EXPECT_EQ(target.pieces[i].source_row, pieces[i].source_row) << i;
    EXPECT_EQ(target.pieces[i].rows, pieces[i].rows) << i;
  }
}

TEST(DitLoraNames, FluxKohyaAndBflNamesPatchWholeWeights) {
  const DitLoraNames names = flux_names();
  expect_whole(names, "lora_unet_double_blocks_0_img_attn_qkv",
               "double_blocks.0.img_attn.qkv.weight");
  expect_whole(names, "diffusion_model.double_blocks.0.img_attn.qkv",
               "double_blocks.0.img_attn.qkv.weight");
  expect_whole(names, "lora_unet_single_blocks_0_linear1", "single_blocks.0.linear1.weight");
  expect_whole(names, "diffusion_model.img_in.bias", "img_in.bias");
}

TEST(DitLoraNames, FluxDiffusersNamesTargetRowsOfFusedWeights) {
  const DitLoraNames names = flux_names();
  expect_pieces(names, "transformer.transformer_blocks.0.attn.to_k",
                "double_blocks.0.img_attn.qkv.weight", {{3072, 0, 3072}}, 3072);
  expect_pieces(names, "lora_transformer_transformer_blocks_0_attn_add_v_proj",
                "double_blocks.0.txt_attn.qkv.weight", {{6144, 0, 3072}}, 3072);
  expect_pieces(names, "transformer.single_transformer_blocks.0.proj_mlp",
                "single_blocks.0.linear1.weight", {{9216, 0, 12288}}, 12288);
  expect_pieces(names, "lycoris_single_transformer_blocks_0_attn_to_q",
                "single_blocks.0.linear1.weight", {{0, 0, 3072}}, 3072);
  expect_whole(names, "transformer.x_embedder", "img_in.weight");
  expect_whole(names, "transformer.transformer_blocks.0.attn.to_out.0",
               "double_blocks.0.img_attn.proj.weight");
}

TEST(DitLoraNames, FluxFinalModulationSwapsScaleAndShift) {
  expect_pieces(flux_names(), "transformer.norm_out.linear",
                "final_layer.adaLN_modulation.1.weight", {{0, 3072, 3072}, {3072, 0, 3072}},
                6144);
}

TEST(DitLoraNames, Sd3DiffusersNamesTargetRowsOfFusedWeights) {
  const DitLoraNames names = sd3_names();
  expect_whole(names, "lora_unet_joint_blocks_0_x_block_attn_qkv",
               "joint_blocks.0.x_block.attn.qkv.weight");
  expect_pieces(names, "transformer.transformer_blocks.0.attn.to_v",
                "joint_blocks.0.x_block.attn.qkv.weight", {{3072, 0, 1536}}, 1536);
  expect_pieces(names, "base_model.model.transformer_blocks.0.attn.add_q_proj",
                "joint_blocks.0.context_block.attn.qkv.weight", {{0, 0, 1536}}, 1536);
  expect_pieces(names, "lora_transformer_norm_out_linear",
                "final_layer.adaLN_modulation.1.weight", {{0, 1536, 1536}, {1536, 0, 1536}},
                3072);
  expect_whole(names, "lycoris_transformer_blocks_0_attn_to_out_0",
               "joint_blocks.0.x_block.attn.proj.weight");
}

TEST(DitLoraNames, ZImageGroupedQueryBlocksHaveTheirOwnWidths) {
  const DitLoraNames names = zimage_names();
  expect_whole(names, "lora_unet_layers_0_attention_qkv", "layers.0.attention.qkv.weight");
  expect_whole(names, "diffusion_model.layers.0.attention.qkv", "layers.0.attention.qkv.weight");
  expect_pieces(names, "diffusion_model.layers.0.attention.to_q",
                "layers.0.attention.qkv.weight", {{0, 0, 3840}}, 3840);
  expect_pieces(names, "transformer.layers.0.attention.to_k", "layers.0.attention.qkv.weight",
                {{3840, 0, 1280}}, 1280);
  expect_pieces(names, "lycoris_layers_0_attention_to_v", "layers.0.attention.qkv.weight",
                {{5120, 0, 1280}}, 1280);
  expect_whole(names, "transformer.layers.0.attention.to_out.0", "layers.0.attention.out.weight");
}

TEST(DitLoraNames, SdFamiliesHaveNoDiffusersNames) {
  const DitLoraNames names =
      dit_lora_names(Family::kSDXL, {"a.weight"}, {{"a.weight", "b.weight", {0, 0, 4}}});
  EXPECT_EQ(names.size(), 2u);
  expect_whole(names, "lora_unet_a", "a.weight");
  expect_whole(names, "diffusion_model.a", "a.weight");
}

// The module names of a kohya or PEFT LoRA file: its tensor names without the tensor suffix.
std::set<std::string> lora_modules(const std::string& path) {
  std::set<std::string> modules;
  const SafetensorsFile file = SafetensorsFile::open(path);
  for (const auto& tensor : file.tensors()) {
    for (const char* suffix : {".lora_down.weight", ".lora_up.weight", ".lora_A.weight",
                               ".lora_B.weight", ".alpha"}) {
      if (tensor.name.ends_with(suffix)) {
        modules.insert(tensor.name.substr(0, tensor.name.size() - std::string(suffix).size()));
      }
    }
  }
  return modules;
}

DitLoraNames tiny_names(Family family) {
  if (family == Family::kFlux) {
    const flux::FluxConfig config = flux::tiny_flux_config(true);
    return dit_lora_names(family, names_of(flux::flux_transformer_layout(config)),
                          flux_diffusers_links(config));
  }
  if (family == Family::kSD3) {
    const sd3::Sd3Config config = sd3::tiny_sd3_split_config();
    return dit_lora_names(family, names_of(sd3::sd3_transformer_layout(config)),
                          sd3_diffusers_links(config));
  }
  const zimage::ZImageConfig config = zimage::tiny_zimage_split_config();
  return dit_lora_names(family, names_of(zimage::zimage_transformer_layout(config)),
                        zimage_diffusers_links(config));
}

TEST(DitLoraNames, TinyDitLorasUseNamesOfTheKeyMap) {
  const test::TestDir dir("dit_lora_");
  for (Family family : {Family::kFlux, Family::kSD3, Family::kZImage}) {
    const DitLoraNames names = tiny_names(family);
    for (TinyLoraFormat format : {TinyLoraFormat::kKohya, TinyLoraFormat::kPeft}) {
      const std::string path = (dir.path() / "lora.safetensors").string();
      write_tiny_lora(path, family, format, 1);
      const std::set<std::string> modules = lora_modules(path);
      EXPECT_GT(modules.size(), 4u);
      for (const std::string& module : modules) {
        EXPECT_TRUE(names.count(module)) << family_name(family) << ": " << module;
      }
    }
  }
}

}  // namespace
}  // namespace df::engine

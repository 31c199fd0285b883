// Tests of weight loading: safetensors and libtorch tensors, single-file keys, model loading.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "../pickle_test_bytes.h"
#include "core/error.h"
#include "engine/checkpoint.h"
#include "engine/ldm_keys.h"
#include "engine/safetensors.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            (std::string("df_checkpoint_") + info->test_suite_name() + "_" + info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(SafetensorsTorch, SaveLoadRoundTripsEveryDtype) {
  TempDir dir;
  TensorMap tensors = {
      {"f32", at::randn({3, 4})},
      {"f16", at::randn({2, 5}).to(at::kHalf)},
      {"bf16", at::randn({7}).to(at::kBFloat16)},
      {"f64", at::randn({2}, at::kDouble)},
      {"i64", at::arange(6, at::kLong).reshape({2, 3})},
      {"i32", at::arange(3, at::kInt)},
      {"i16", at::arange(3, at::kShort)},
      {"i8", at::arange(3, at::kChar)},
      {"u8", at::arange(3, at::kByte)},
      {"bool", at::tensor({1, 0, 1}).to(at::kBool)},
      {"scalar", at::scalar_tensor(2.5)},
      {"empty", at::zeros({0, 3})},
      {"strided", at::randn({4, 6}).t()},
  };
  save_safetensors(dir.file("t.safetensors"), tensors, {{"k", "v"}});
  const TensorMap loaded = load_safetensors(dir.file("t.safetensors"));
  ASSERT_EQ(loaded.size(), tensors.size());
  for (const auto& [name, tensor] : tensors) {
    const at::Tensor& got = loaded.at(name);
    EXPECT_EQ(got.scalar_type(), tensor.scalar_type()) << name;
    EXPECT_EQ(got.sizes(), tensor.sizes()) << name;
    EXPECT_TRUE(at::equal(got, tensor)) << name;
  }
  EXPECT_EQ(SafetensorsFile::open(dir.file("t.safetensors")).metadata().at("k"), "v");
}

TEST(SafetensorsTorch, LoadAsConvertsFloatsAndRenames) {
  TempDir dir;
  const at::Tensor half = at::randn({4, 4}).to(at::kHalf);
  const at::Tensor single = at::randn({3});
  save_safetensors(dir.file("m.safetensors"), {{"keep.half", half},
                                               {"keep.single", single},
                                               {"keep.ids", at::arange(3, at::kLong)},
                                               {"drop.me", at::ones({2})}});
  auto strip_keep = [](const std::string& name) -> std::optional<std::string> {
    if (name.rfind("keep.", 0) != 0) return std::nullopt;
    return name.substr(5);
  };
  TensorMap loaded;
  {
    const SafetensorsFile file = SafetensorsFile::open(dir.file("m.safetensors"));
    loaded = load_safetensors_as(file, at::kFloat, strip_keep);
    // A tensor already in the wanted dtype views the map instead of being copied.
    EXPECT_EQ(loaded.at("single").data_ptr(), file.data(*file.find("keep.single")));
    EXPECT_NE(loaded.at("half").data_ptr(), file.data(*file.find("keep.half")));
  }
  // The tensors keep the map alive after the file object is gone.
  ASSERT_EQ(loaded.size(), 3u);
  EXPECT_EQ(loaded.at("half").scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(loaded.at("half"), half.to(at::kFloat)));
  EXPECT_TRUE(at::equal(loaded.at("single"), single));
  EXPECT_EQ(loaded.at("ids").scalar_type(), at::kLong);
}

TEST(SafetensorsTorch, LoadAsRejectsTwoTensorsWithOneName) {
  TempDir dir;
  save_safetensors(dir.file("m.safetensors"), {{"a", at::ones({1})}, {"b", at::ones({1})}});
  const SafetensorsFile file = SafetensorsFile::open(dir.file("m.safetensors"));
  try {
    load_safetensors_as(file, at::kFloat, [](const std::string&) { return std::string("same"); });
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruptFile);
  }
}

std::string unet_key(const std::string& key, int layers_per_block = 2) {
  return ldm_unet_key_to_diffusers(key, layers_per_block).value_or("<none>");
}

TEST(LdmKeys, UNetNamesFollowTheBlockLayout) {
  EXPECT_EQ(unet_key("time_embed.0.weight"), "time_embedding.linear_1.weight");
  EXPECT_EQ(unet_key("time_embed.2.bias"), "time_embedding.linear_2.bias");
  EXPECT_EQ(unet_key("label_emb.0.0.weight"), "add_embedding.linear_1.weight");
  EXPECT_EQ(unet_key("label_emb.0.2.bias"), "add_embedding.linear_2.bias");
  EXPECT_EQ(unet_key("input_blocks.0.0.weight"), "conv_in.weight");
  EXPECT_EQ(unet_key("input_blocks.1.0.in_layers.0.weight"),
            "down_blocks.0.resnets.0.norm1.weight");
  EXPECT_EQ(unet_key("input_blocks.2.0.in_layers.2.bias"), "down_blocks.0.resnets.1.conv1.bias");
  EXPECT_EQ(unet_key("input_blocks.3.0.op.weight"), "down_blocks.0.downsamplers.0.conv.weight");
  EXPECT_EQ(unet_key("input_blocks.4.0.emb_layers.1.weight"),
            "down_blocks.1.resnets.0.time_emb_proj.weight");
  EXPECT_EQ(unet_key("input_blocks.4.0.skip_connection.weight"),
            "down_blocks.1.resnets.0.conv_shortcut.weight");
  EXPECT_EQ(unet_key("input_blocks.5.1.transformer_blocks.1.attn2.to_k.weight"),
            "down_blocks.1.attentions.1.transformer_blocks.1.attn2.to_k.weight");
  EXPECT_EQ(unet_key("middle_block.0.out_layers.3.weight"), "mid_block.resnets.0.conv2.weight");
  EXPECT_EQ(unet_key("middle_block.1.proj_in.weight"), "mid_block.attentions.0.proj_in.weight");
  EXPECT_EQ(unet_key("middle_block.2.out_layers.0.bias"), "mid_block.resnets.1.norm2.bias");
  EXPECT_EQ(unet_key("output_blocks.0.0.in_layers.0.weight"), "up_blocks.0.resnets.0.norm1.weight");
  EXPECT_EQ(unet_key("output_blocks.2.1.conv.weight"), "up_blocks.0.upsamplers.0.conv.weight");
  EXPECT_EQ(unet_key("output_blocks.5.2.conv.bias"), "up_blocks.1.upsamplers.0.conv.bias");
  EXPECT_EQ(unet_key("output_blocks.4.1.norm.weight"), "up_blocks.1.attentions.1.norm.weight");
  EXPECT_EQ(unet_key("out.0.weight"), "conv_norm_out.weight");
  EXPECT_EQ(unet_key("out.2.bias"), "conv_out.bias");
  // One resnet per level: input block 3 is the second level's resnet.
  EXPECT_EQ(unet_key("input_blocks.3.0.in_layers.0.weight", 1),
            "down_blocks.1.resnets.0.norm1.weight");
  EXPECT_EQ(unet_key("input_blocks.1.0.mystery.weight"), "<none>");
  EXPECT_EQ(unet_key("lora_down.weight"), "<none>");
}

TEST(LdmKeys, VaeDecoderBlocksAreReversed) {
  auto vae_key = [](const std::string& key) {
    return ldm_vae_key_to_diffusers(key, 4).value_or("<none>");
  };
  EXPECT_EQ(vae_key("encoder.down.0.block.1.norm1.weight"),
            "encoder.down_blocks.0.resnets.1.norm1.weight");
  EXPECT_EQ(vae_key("encoder.down.1.block.0.nin_shortcut.weight"),
            "encoder.down_blocks.1.resnets.0.conv_shortcut.weight");
  EXPECT_EQ(vae_key("encoder.down.2.downsample.conv.bias"),
            "encoder.down_blocks.2.downsamplers.0.conv.bias");
  EXPECT_EQ(vae_key("decoder.up.3.block.2.conv2.weight"),
            "decoder.up_blocks.0.resnets.2.conv2.weight");
  EXPECT_EQ(vae_key("decoder.up.1.upsample.conv.weight"),
            "decoder.up_blocks.2.upsamplers.0.conv.weight");
  EXPECT_EQ(vae_key("decoder.mid.block_2.norm2.bias"), "decoder.mid_block.resnets.1.norm2.bias");
  EXPECT_EQ(vae_key("encoder.mid.attn_1.norm.weight"),
            "encoder.mid_block.attentions.0.group_norm.weight");
  EXPECT_EQ(vae_key("encoder.mid.attn_1.proj_out.bias"),
            "encoder.mid_block.attentions.0.to_out.0.bias");
  EXPECT_EQ(vae_key("decoder.mid.attn_1.q.weight"), "decoder.mid_block.attentions.0.to_q.weight");
  EXPECT_EQ(vae_key("decoder.norm_out.weight"), "decoder.conv_norm_out.weight");
  EXPECT_EQ(vae_key("encoder.conv_in.weight"), "encoder.conv_in.weight");
  EXPECT_EQ(vae_key("post_quant_conv.bias"), "post_quant_conv.bias");
  EXPECT_EQ(vae_key("decoder.up.4.block.0.conv1.weight"), "<none>");
  EXPECT_EQ(vae_key("loss.discriminator.weight"), "<none>");
}

TEST(LdmKeys, ClipNames) {
  EXPECT_EQ(hf_clip_key("embeddings.token_embedding.weight"),
            "text_model.embeddings.token_embedding.weight");
  EXPECT_EQ(hf_clip_key("text_model.final_layer_norm.bias"), "text_model.final_layer_norm.bias");
  EXPECT_EQ(hf_clip_key("text_projection.weight"), "text_projection.weight");
  EXPECT_EQ(open_clip_key_to_hf("positional_embedding"),
            "text_model.embeddings.position_embedding.weight");
  EXPECT_EQ(open_clip_key_to_hf("transformer.resblocks.22.attn.in_proj_weight"),
            "text_model.encoder.layers.22.self_attn.in_proj_weight");
  EXPECT_EQ(open_clip_key_to_hf("transformer.resblocks.3.mlp.c_proj.bias"),
            "text_model.encoder.layers.3.mlp.fc2.bias");
  EXPECT_EQ(open_clip_key_to_hf("transformer.resblocks.0.ln_2.weight"),
            "text_model.encoder.layers.0.layer_norm2.weight");
  EXPECT_EQ(open_clip_key_to_hf("ln_final.weight"), "text_model.final_layer_norm.weight");
  EXPECT_EQ(open_clip_key_to_hf("text_projection"), "text_projection.weight");
  EXPECT_FALSE(open_clip_key_to_hf("transformer.resblocks.x.ln_1.weight"));
  EXPECT_FALSE(open_clip_key_to_hf("visual.proj"));
}

TEST(LdmKeys, OpenClipAttentionIsSplitAndProjectionTransposed) {
  const at::Tensor fused = at::arange(24, at::kFloat).reshape({6, 4}).contiguous();
  const at::Tensor bias = at::arange(6, at::kFloat);
  const at::Tensor projection = at::arange(8, at::kFloat).reshape({4, 2});
  TensorMap tensors = {{"text_model.encoder.layers.0.self_attn.in_proj_weight", fused},
                       {"text_model.encoder.layers.0.self_attn.in_proj_bias", bias},
                       {"text_projection.weight", projection}};
  split_open_clip_tensors(tensors);
  ASSERT_EQ(tensors.size(), 7u);
  const std::string attn = "text_model.encoder.layers.0.self_attn.";
  EXPECT_TRUE(at::equal(tensors.at(attn + "q_proj.weight"), fused.slice(0, 0, 2)));
  EXPECT_TRUE(at::equal(tensors.at(attn + "k_proj.weight"), fused.slice(0, 2, 4)));
  EXPECT_TRUE(at::equal(tensors.at(attn + "v_proj.weight"), fused.slice(0, 4, 6)));
  EXPECT_TRUE(at::equal(tensors.at(attn + "v_proj.bias"), bias.slice(0, 4, 6)));
  EXPECT_TRUE(at::equal(tensors.at("text_projection.weight"), projection.t()));

  TensorMap uneven = {{"text_model.encoder.layers.0.self_attn.in_proj_bias", at::ones({4})}};
  EXPECT_THROW(split_open_clip_tensors(uneven), Error);
}

TEST(LdmKeys, VaeAttentionConvolutionsBecomeLinear) {
  TensorMap tensors = {{"decoder.mid_block.attentions.0.to_q.weight", at::ones({8, 8, 1, 1})},
                       {"decoder.mid_block.attentions.0.to_q.bias", at::ones({8})},
                       {"encoder.mid_block.attentions.0.to_out.0.weight", at::ones({8, 8})}};
  squeeze_vae_attention_weights(tensors);
  EXPECT_EQ(tensors.at("decoder.mid_block.attentions.0.to_q.weight").sizes(),
            (at::IntArrayRef{8, 8}));
  EXPECT_EQ(tensors.at("encoder.mid_block.attentions.0.to_out.0.weight").sizes(),
            (at::IntArrayRef{8, 8}));
  TensorMap wide = {{"decoder.mid_block.attentions.0.to_k.weight", at::ones({8, 8, 3, 3})}};
  EXPECT_THROW(squeeze_vae_attention_weights(wide), Error);
}

ErrorCode family_error(const TempDir& dir, const TensorMap& tensors) {
  save_safetensors(dir.file("f.safetensors"), tensors);
  try {
    detect_single_file_family(TensorFile::open(dir.file("f.safetensors")));
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::kInternal;
}

Family family_of(const TempDir& dir, const std::string& text_key) {
  save_safetensors(dir.file("f.safetensors"),
                   {{"model.diffusion_model.input_blocks.0.0.weight", at::zeros({8, 4, 3, 3})},
                    {text_key, at::zeros({1})}});
  return detect_single_file_family(TensorFile::open(dir.file("f.safetensors")));
}

TEST(LdmKeys, DetectsFamilyFromTextEncoders) {
  TempDir dir;
  EXPECT_EQ(family_of(dir, "cond_stage_model.transformer.text_model.final_layer_norm.bias"),
            Family::kSD1);
  EXPECT_EQ(family_of(dir, "cond_stage_model.model.ln_final.bias"), Family::kSD2);
  EXPECT_EQ(family_of(dir, "conditioner.embedders.1.model.ln_final.bias"), Family::kSDXL);
  EXPECT_EQ(family_of(dir, "conditioner.embedders.0.model.ln_final.bias"), Family::kSDXLRefiner);
  EXPECT_EQ(family_error(dir, {{"lora_unet_x.lora_down.weight", at::zeros({1})}}),
            ErrorCode::kUnsupported);
  EXPECT_EQ(family_error(dir, {{"model.diffusion_model.input_blocks.0.0.weight", at::zeros({1})}}),
            ErrorCode::kUnsupported);
}

ErrorCode load_error(const std::string& path) {
  try {
    load_model(path, LoadOptions{});
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::kInternal;
}

TEST(LoadModel, RefusesWhatItCannotSafelyLoad) {
  TempDir dir;
  EXPECT_EQ(load_error(dir.file("missing.safetensors")), ErrorCode::kModelNotFound);
  for (const char* name : {"m.ckpt", "m.pt", "m.pth", "m.bin", "M.CKPT"}) {
    test::write_file(dir.file(name), test::hostile_pickle());
    EXPECT_EQ(load_error(dir.file(name)), ErrorCode::kUnsafeFormat) << name;
  }
  save_safetensors(dir.file("m.gguf"), {{"x", at::zeros({1})}});
  EXPECT_EQ(load_error(dir.file("m.gguf")), ErrorCode::kUnsupported);
  EXPECT_EQ(load_error(dir.path().string()), ErrorCode::kUnsupported);  // no model_index.json
  std::ofstream(dir.file("bad.safetensors")) << "not a safetensors file at all";
  EXPECT_EQ(load_error(dir.file("bad.safetensors")), ErrorCode::kCorruptFile);
}

}  // namespace
}  // namespace df::engine

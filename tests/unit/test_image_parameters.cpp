// Unit tests for the A1111 "parameters" text: exact layout, display names, parsing, round trips.
#include <gtest/gtest.h>

#include "image/generation_parameters.h"
#include "test_image_support.h"

namespace df {
namespace {

GenerationParameters sample_parameters() {
  GenerationParameters p;
  p.prompt = "a cat on a mat";
  p.negative_prompt = "blurry";
  p.steps = 20;
  p.sampler = "euler";
  p.scheduler = "normal";
  p.cfg = 8;
  p.seed = 1;
  p.width = 512;
  p.height = 512;
  p.model_name = "name";
  p.model_hash = "abcdef1234567890abcdef1234567890abcdef1234567890abcdef1234567890";
  return p;
}

void expect_same(const GenerationParameters& a, const GenerationParameters& b) {
  EXPECT_EQ(a.prompt, b.prompt);
  EXPECT_EQ(a.negative_prompt, b.negative_prompt);
  EXPECT_EQ(a.steps, b.steps);
  EXPECT_EQ(a.sampler, b.sampler);
  EXPECT_EQ(a.scheduler, b.scheduler);
  EXPECT_EQ(a.cfg, b.cfg);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.height, b.height);
  EXPECT_EQ(a.model_name, b.model_name);
  EXPECT_EQ(a.model_hash, b.model_hash);
  EXPECT_EQ(a.denoise, b.denoise);
}

TEST(ImageA1111Parameters, FormatsTheA1111Layout) {
  EXPECT_EQ(
      format_a1111_parameters(sample_parameters()),
      "a cat on a mat\n"
      "Negative prompt: blurry\n"
      "Steps: 20, Sampler: Euler, Schedule type: Normal, CFG scale: 8, Seed: 1, Size: 512x512, "
      "Model hash: abcdef1234, Model: name");
}

TEST(ImageA1111Parameters, UsesA1111DisplayNamesAndKeepsOthers) {
  GenerationParameters p = sample_parameters();
  p.negative_prompt.clear();
  p.sampler = "euler_ancestral";
  p.scheduler = "karras";
  p.cfg = 7.5;
  p.width = 768;
  p.denoise = 0.75;
  EXPECT_EQ(format_a1111_parameters(p),
            "a cat on a mat\n"
            "Steps: 20, Sampler: Euler a, Schedule type: Karras, CFG scale: 7.5, Seed: 1, "
            "Size: 768x512, Model hash: abcdef1234, Model: name, Denoising strength: 0.75");
  p.sampler = "dpmpp_2m";
  p.scheduler = "sgm_uniform";
  EXPECT_NE(format_a1111_parameters(p).find("Sampler: DPM++ 2M, Schedule type: SGM Uniform,"),
            std::string::npos);
  p.sampler = "res_multistep";  // no A1111 counterpart: the ComfyUI name is written
  p.scheduler = "linear_quadratic";
  EXPECT_NE(
      format_a1111_parameters(p).find("Sampler: res_multistep, Schedule type: linear_quadratic,"),
      std::string::npos);
}

TEST(ImageA1111Parameters, LeavesOutEmptyFieldsAndQuotesAwkwardValues) {
  GenerationParameters p;
  p.prompt = "x";
  p.steps = 4;
  p.cfg = 1;
  p.seed = 18446744073709551615ull;
  p.width = 64;
  p.height = 32;
  p.model_name = "my model, v2: \"final\"";
  EXPECT_EQ(format_a1111_parameters(p),
            "x\nSteps: 4, CFG scale: 1, Seed: 18446744073709551615, Size: 64x32, "
            "Model: \"my model, v2: \\\"final\\\"\"");
}

TEST(ImageA1111Parameters, ParsesWhatItFormats) {
  GenerationParameters p = sample_parameters();
  p.prompt = "masterpiece, 1girl, cherry blossoms 桜 🌸\nsecond line: with colon";
  p.negative_prompt = "lowres, bad anatomy\nworst quality";
  p.sampler = "dpmpp_2m_sde";
  p.scheduler = "ddim_uniform";
  p.cfg = 6.25;
  p.seed = 156680208700286;
  p.width = 1024;
  p.height = 576;
  p.model_name = "sd_xl_base_1.0, \"fp16\"";
  p.denoise = 0.55;
  GenerationParameters parsed = parse_a1111_parameters(format_a1111_parameters(p));
  p.model_hash = p.model_hash.substr(0, 10);  // the text carries the short hash
  expect_same(parsed, p);
}

TEST(ImageA1111Parameters, ParsesRealA1111TextIncludingUnknownFields) {
  const std::string text =
      "photo of a lighthouse\n"
      "Negative prompt: (worst quality:1.4), text\n"
      "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 3735928559, Size: 512x768, "
      "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, VAE hash: 735e4c3a44, "
      "Lora hashes: \"add_detail: 7c6bad76eb54, more: 0123\", Version: v1.6.0";
  const GenerationParameters p = parse_a1111_parameters(text);
  EXPECT_EQ(p.prompt, "photo of a lighthouse");
  EXPECT_EQ(p.negative_prompt, "(worst quality:1.4), text");
  EXPECT_EQ(p.steps, 30);
  EXPECT_EQ(p.sampler, "dpmpp_2m");  // the legacy combined name is split
  EXPECT_EQ(p.scheduler, "karras");
  EXPECT_EQ(p.cfg, 7);
  EXPECT_EQ(p.seed, 3735928559u);
  EXPECT_EQ(p.width, 512);
  EXPECT_EQ(p.height, 768);
  EXPECT_EQ(p.model_hash, "6ce0161689");
  EXPECT_EQ(p.model_name, "v1-5-pruned-emaonly");
  EXPECT_FALSE(p.denoise.has_value());
}

TEST(ImageA1111Parameters, TextWithoutAParameterLineIsAllPrompt) {
  const GenerationParameters p = parse_a1111_parameters("just a prompt\nSteps: 20, CFG scale: 7");
  EXPECT_EQ(p.prompt, "just a prompt\nSteps: 20, CFG scale: 7");
  EXPECT_EQ(p.steps, 0);
  EXPECT_EQ(parse_a1111_parameters("").prompt, "");
}

TEST(ImageA1111Parameters, EmptyPromptsRoundTrip) {
  GenerationParameters p = sample_parameters();
  p.prompt.clear();
  p.negative_prompt.clear();
  const std::string text = format_a1111_parameters(p);
  EXPECT_TRUE(text.starts_with("Steps: 20,"));
  GenerationParameters parsed = parse_a1111_parameters(text);
  p.model_hash = p.model_hash.substr(0, 10);
  expect_same(parsed, p);
}

TEST(ImageA1111Parameters, MalformedKnownFieldsAreValidationErrors) {
  using image_test::error_code_of;
  EXPECT_EQ(error_code_of([] { parse_a1111_parameters("p\nSteps: many, Seed: 1, Size: 8x8"); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([] { parse_a1111_parameters("p\nSteps: 2, Seed: -1, Size: 8x8"); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([] { parse_a1111_parameters("p\nSteps: 2, Seed: 1, Size: 8 by 8"); }),
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace df

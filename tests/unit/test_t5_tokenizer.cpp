// Tests of the T5 SentencePiece tokenizer, ComfyUI's weighted T5 tokens, the tiny tokenizer and T5Config.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/text/t5_config.h"
#include "engine/text/t5_tiny_tokenizer.h"
#include "engine/text/t5_tokenizer.h"
#include "engine/text/tokenizers/sentencepiece_model.h"
#include "test_support.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

void write(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A tokenizer.json with a nine-piece unigram model and no normalizer.
nlohmann::json small_tokenizer_json() {
  const std::vector<std::pair<std::string, double>> pieces = {
      {"<pad>", 0.0}, {"</s>", 0.0}, {"<unk>", 0.0}, {"\xE2\x96\x81", -3.0},
      {"\xE2\x96\x81" "cat", -2.0}, {"c", -5.0}, {"a", -5.0}, {"t", -5.0}, {"s", -5.0}};
  nlohmann::json vocab = nlohmann::json::array();
  for (const auto& [piece, score] : pieces) vocab.push_back(nlohmann::json::array({piece, score}));
  nlohmann::json added = nlohmann::json::array();
  for (int id = 0; id < 3; ++id) {
    added.push_back({{"id", id}, {"content", pieces[id].first}, {"special", true}});
  }
  return {{"added_tokens", added},
          {"normalizer", nullptr},
          {"model", {{"type", "Unigram"}, {"unk_id", 2}, {"vocab", vocab}}}};
}

class T5TokenizerTest : public ::testing::Test {
 protected:
  T5Tokenizer tiny() {
    write_tiny_t5_tokenizer(dir_.path().string());
    return T5Tokenizer::from_file(dir_.path().string());
  }

  test::TestDir dir_{"df_t5_tokenizer_"};
};

TEST_F(T5TokenizerTest, TinyTokenizerHasT5sSpecialIdsAndWholeWords) {
  const T5Tokenizer tokenizer = tiny();
  EXPECT_EQ(tokenizer.pad_id(), 0);
  EXPECT_EQ(tokenizer.eos_id(), 1);
  EXPECT_EQ(tokenizer.unk_id(), 2);
  EXPECT_EQ(tokenizer.vocab_size(), static_cast<size_t>(tiny_t5_vocab_size()));
  for (const char* name : {"spiece.model", "tokenizer_config.json", "special_tokens_map.json"}) {
    EXPECT_TRUE(fs::is_regular_file(dir_.path() / name)) << name;
  }
  const auto ids = tokenizer.encode("a photo of a cat");
  ASSERT_EQ(ids.size(), 5u);  // one piece per word
  EXPECT_EQ(ids[0], ids[3]);
  EXPECT_EQ(tokenizer.encode("  a   photo of a  cat  "), tokenizer.encode("a photo of a cat"));
  EXPECT_TRUE(tokenizer.encode("").empty());
  EXPECT_TRUE(tokenizer.encode("   ").empty());
}

TEST_F(T5TokenizerTest, SpecialTokensAreCutOutOfTheText) {
  const T5Tokenizer tokenizer = tiny();
  const int size = static_cast<int>(tokenizer.vocab_size());
  const auto cat = tokenizer.encode("cat");
  EXPECT_EQ(tokenizer.encode("<extra_id_0>"), std::vector<int32_t>{size - 1});
  EXPECT_EQ(tokenizer.encode("<extra_id_99>"), std::vector<int32_t>{size - 100});
  std::vector<int32_t> expected = cat;
  expected.push_back(1);
  expected.insert(expected.end(), cat.begin(), cat.end());
  EXPECT_EQ(tokenizer.encode("cat</s>cat"), expected);
  EXPECT_NE(tokenizer.encode("<extra_id_100>").size(), 1u);  // not a token: plain text
}

TEST_F(T5TokenizerTest, TrailingWhitespaceCanEndWithTheSpacePiece) {
  write_tiny_t5_tokenizer(dir_.path().string());
  const auto piece = T5Tokenizer::from_file(dir_.path().string(), T5Tokenizer::TrailingSpace::kPiece);
  const auto dropped = T5Tokenizer::from_file(dir_.path().string());
  std::vector<int32_t> expected = dropped.encode("a cat");
  EXPECT_EQ(piece.encode("a cat"), expected);
  EXPECT_EQ(dropped.encode("a cat  "), expected);
  expected.push_back(3);  // "▁"
  EXPECT_EQ(piece.encode("a cat  "), expected);
  EXPECT_EQ(piece.encode(" "), std::vector<int32_t>{3});
  EXPECT_TRUE(piece.encode("").empty());
  EXPECT_EQ(t5_weighted_tokens(piece, "a (cat:1.2)", 0).ids.size(), 4u);  // ▁a ▁ ▁cat </s>
}

TEST_F(T5TokenizerTest, TokenizerJsonGivesTheSameIdsAsItsSpieceModel) {
  write(dir_.path() / "tokenizer.json", small_tokenizer_json().dump());
  const T5Tokenizer from_json = T5Tokenizer::from_file((dir_.path() / "tokenizer.json").string());
  EXPECT_EQ(from_json.vocab_size(), 9u);
  EXPECT_EQ(from_json.encode("cat cats"), (std::vector<int32_t>{4, 4, 8}));
  EXPECT_EQ(from_json.encode("act"), (std::vector<int32_t>{3, 6, 5, 7}));
  EXPECT_EQ(from_json.encode("dog"), (std::vector<int32_t>{3, 2}));  // unknown characters: one <unk>
  EXPECT_EQ(from_json.encode("cat</s>"), (std::vector<int32_t>{4, 1}));
}

TEST_F(T5TokenizerTest, MissingAndBrokenFilesFailWithThePath) {
  const std::string missing = (dir_.path() / "nope" / "spiece.model").string();
  const Error not_found = test::error_of([&] { T5Tokenizer::from_file(missing); });
  EXPECT_EQ(not_found.code(), ErrorCode::kModelNotFound);
  EXPECT_NE(std::string(not_found.what()).find(missing), std::string::npos);
  EXPECT_EQ(test::error_code_of([&] { T5Tokenizer::from_file(dir_.path().string()); }),
            ErrorCode::kModelNotFound);  // a folder without tokenizer files

  const fs::path spiece = dir_.path() / "spiece.model";
  write(spiece, std::string("\x0a\x03\x0a\x01", 4));  // truncated protobuf
  const Error corrupt = test::error_of([&] { T5Tokenizer::from_file(spiece.string()); });
  EXPECT_EQ(corrupt.code(), ErrorCode::kCorruptFile);
  EXPECT_NE(std::string(corrupt.what()).find(spiece.string()), std::string::npos);

  const fs::path json = dir_.path() / "tokenizer.json";
  write(json, "{\"model\": ");
  EXPECT_EQ(test::error_code_of([&] { T5Tokenizer::from_file(json.string()); }), ErrorCode::kCorruptFile);
  auto bpe = small_tokenizer_json();
  bpe["model"]["type"] = "BPE";
  write(json, bpe.dump());
  EXPECT_EQ(test::error_code_of([&] { T5Tokenizer::from_file(json.string()); }), ErrorCode::kUnsupported);
  auto repeated = small_tokenizer_json();
  repeated["model"]["vocab"].push_back(nlohmann::json::array({"c", -1.0}));
  write(json, repeated.dump());
  EXPECT_EQ(test::error_code_of([&] { T5Tokenizer::from_file(json.string()); }), ErrorCode::kCorruptFile);
}

TEST_F(T5TokenizerTest, TextThatIsNotUtf8IsRejected) {
  const T5Tokenizer tokenizer = tiny();
  EXPECT_EQ(test::error_code_of([&] { tokenizer.encode("bad \xff byte"); }), ErrorCode::kInvalidArgument);
}

TEST_F(T5TokenizerTest, WeightedTokensFollowComfyUI) {
  const T5Tokenizer tokenizer = tiny();
  const auto tokens = t5_weighted_tokens(tokenizer, "a (red cat:1.5) ((dog))", kSd3T5MinLength);
  ASSERT_EQ(tokens.ids.size(), 77u);
  ASSERT_EQ(tokens.weights.size(), 77u);
  const auto red_cat = tokenizer.encode("red cat");
  ASSERT_EQ(red_cat.size(), 2u);
  EXPECT_EQ(tokens.ids[0], tokenizer.encode("a")[0]);
  EXPECT_EQ(tokens.weights[0], 1.0f);
  EXPECT_EQ(tokens.ids[1], red_cat[0]);
  EXPECT_EQ(tokens.weights[1], 1.5f);
  EXPECT_EQ(tokens.weights[2], 1.5f);
  EXPECT_EQ(tokens.ids[3], tokenizer.encode("dog")[0]);
  EXPECT_FLOAT_EQ(tokens.weights[3], 1.1f * 1.1f);
  EXPECT_EQ(tokens.ids[4], tokenizer.eos_id());
  EXPECT_EQ(tokens.ids[76], tokenizer.pad_id());
  EXPECT_EQ(tokens.weights[76], 1.0f);
  EXPECT_TRUE(tokens.has_non_unit_weights());
}

TEST_F(T5TokenizerTest, WeightedTokensPadButNeverCut) {
  const T5Tokenizer tokenizer = tiny();
  const auto empty = t5_weighted_tokens(tokenizer, "", kFluxT5MinLength);
  ASSERT_EQ(empty.ids.size(), 256u);
  EXPECT_EQ(empty.ids[0], tokenizer.eos_id());
  EXPECT_FALSE(empty.has_non_unit_weights());
  std::string long_prompt;
  for (int i = 0; i < 300; ++i) long_prompt += "cat ";
  EXPECT_EQ(t5_weighted_tokens(tokenizer, long_prompt, kFluxT5MinLength).ids.size(), 301u);
  EXPECT_EQ(t5_weighted_tokens(tokenizer, "embedding:style a cat", 0).ids,
            t5_weighted_tokens(tokenizer, "a cat", 0).ids);
  EXPECT_EQ(test::error_code_of([&] { t5_weighted_tokens(tokenizer, "(cat:nan)", 0); }),
            ErrorCode::kInvalidArgument);
}

TEST(T5ConfigTest, JsonRoundTripsAndDefaultsAreT5Xxl) {
  const T5Config xxl;
  EXPECT_EQ(xxl.inner_dim(), 4096);
  EXPECT_EQ(T5Config::from_json(nlohmann::json::object()), xxl);
  const T5Config tiny = tiny_t5_config(123);
  EXPECT_EQ(T5Config::from_json(tiny.to_json()), tiny);
  EXPECT_EQ(tiny.to_json()["model_type"], "t5");
}

TEST(T5ConfigTest, BadConfigsFail) {
  EXPECT_EQ(test::error_code_of([] { T5Config::from_json({{"d_model", "wide"}}); }),
            ErrorCode::kCorruptFile);
  EXPECT_EQ(test::error_code_of([] { T5Config::from_json({{"num_heads", 0}}); }), ErrorCode::kCorruptFile);
  EXPECT_EQ(test::error_code_of([] { T5Config::from_json({{"feed_forward_proj", "gated-silu"}}); }),
            ErrorCode::kUnsupported);
  EXPECT_EQ(test::error_code_of([] { T5Config::from_json(nlohmann::json::array()); }),
            ErrorCode::kCorruptFile);
}

TEST(T5ConfigTest, InferredFromItsOwnLayout) {
  for (const T5Config& config : {T5Config(), tiny_t5_config(99)}) {
    EXPECT_EQ(T5Config::infer_from_keys(t5_encoder_layout(config)), config);
  }
  T5Config relu = tiny_t5_config(50);
  relu.feed_forward_proj = "relu";
  EXPECT_EQ(T5Config::infer_from_keys(t5_encoder_layout(relu)), relu);
  auto renamed = t5_encoder_layout(tiny_t5_config(99));
  renamed[0].name = "encoder.embed_tokens.weight";
  renamed.push_back({"scaled_fp8", {0}});
  EXPECT_EQ(T5Config::infer_from_keys(renamed), tiny_t5_config(99));
}

TEST(T5ConfigTest, LayoutCountsAndMissingTensors) {
  const auto layout = t5_encoder_layout(T5Config());
  EXPECT_EQ(layout.size(), 1u + 24u * 9u + 1u + 1u);  // shared, 9 per block, bias, final norm
  auto without_bias = layout;
  std::erase_if(without_bias, [](const TensorShape& t) { return t.name.ends_with("relative_attention_bias.weight"); });
  EXPECT_EQ(test::error_code_of([&] { T5Config::infer_from_keys(without_bias); }), ErrorCode::kCorruptFile);
  EXPECT_EQ(test::error_code_of([] { T5Config::infer_from_keys({}); }), ErrorCode::kCorruptFile);
}

}  // namespace
}  // namespace df::engine

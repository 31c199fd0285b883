// Tests of the Qwen2-style byte-level BPE tokenizer, its pre-tokenizer, the tiny writer and Qwen3Config.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/text/qwen3_config.h"
#include "engine/text/tokenizers/byte_bpe_pretokenizer.h"
#include "engine/text/tokenizers/byte_bpe_tiny.h"
#include "engine/text/tokenizers/byte_bpe_tokenizer.h"
#include "engine/utf8.h"
#include "test_support.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<std::string> split(const std::string& text) { return qwen2_pre_tokenize(decode_utf8(text)); }

TEST(Qwen2PreTokenizer, SplitsLikeTheQwen2Pattern) {
  using Pieces = std::vector<std::string>;
  EXPECT_EQ(split("Hello world"), (Pieces{"Hello", " world"}));
  EXPECT_EQ(split("a  b"), (Pieces{"a", " ", " b"}));
  EXPECT_EQ(split("x\n\ny"), (Pieces{"x", "\n\n", "y"}));
  EXPECT_EQ(split("a \n b"), (Pieces{"a", " \n", " b"}));
  EXPECT_EQ(split("123"), (Pieces{"1", "2", "3"}));
  EXPECT_EQ(split("it's DON'T"), (Pieces{"it", "'s", " DON", "'T"}));
  EXPECT_EQ(split("(red hat:1.3)"), (Pieces{"(red", " hat", ":", "1", ".", "3", ")"}));
  EXPECT_EQ(split("end  "), (Pieces{"end", "  "}));
  EXPECT_EQ(split(" !!\n\nx"), (Pieces{" !!\n\n", "x"}));
  EXPECT_EQ(split(" 1"), (Pieces{" ", "1"}));
  EXPECT_EQ(split("東京 タワー"), (Pieces{"東京", " タワー"}));
  EXPECT_TRUE(split("").empty());
}

class ByteBpeTokenizerTest : public ::testing::Test {
 protected:
  std::string tiny_file() {
    write_tiny_qwen_tokenizer(dir_.path().string());
    return (dir_.path() / "tokenizer.json").string();
  }
  json tiny_json() {
    std::ifstream in(tiny_file());
    return json::parse(in);
  }
  std::string write(const std::string& name, const std::string& text) {
    const fs::path path = dir_.path() / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }

  test::TestDir dir_{"df_byte_bpe_"};
};

TEST_F(ByteBpeTokenizerTest, TinyTokenizerHasBytesMergesAndAddedTokens) {
  const auto tokenizer = ByteBpeTokenizer::from_file(tiny_file());
  EXPECT_EQ(tokenizer.vocab_size(), static_cast<size_t>(tiny_qwen_vocab_size()));
  EXPECT_GT(tiny_qwen_vocab_size(), 256 + 200);
  const int end_of_text = tokenizer.token_id("<|endoftext|>");
  EXPECT_EQ(tokenizer.token_id("<|im_start|>"), end_of_text + 1);
  EXPECT_EQ(tokenizer.token_id("<|im_end|>"), end_of_text + 2);
  EXPECT_EQ(tokenizer.token_id("</think>"), tiny_qwen_vocab_size() - 1);
  EXPECT_EQ(tokenizer.encode("<|im_start|>user\n"),
            (std::vector<int32_t>{end_of_text + 1, tokenizer.token_id("user"), '\n'}));
  EXPECT_LT(tokenizer.encode(" masterpiece").size(), std::string(" masterpiece").size());
}

TEST_F(ByteBpeTokenizerTest, UnseenTextFallsBackToBytes) {
  const auto tokenizer = ByteBpeTokenizer::from_file(tiny_file());
  // "€" is three bytes; the tiny vocabulary has no merge for them.
  EXPECT_EQ(tokenizer.encode("€"), (std::vector<int32_t>{0xE2, 0x82, 0xAC}));
  EXPECT_TRUE(tokenizer.encode("").empty());
}

TEST_F(ByteBpeTokenizerTest, NormalisesToNfc) {
  const auto tokenizer = ByteBpeTokenizer::from_file(tiny_file());
  EXPECT_EQ(tokenizer.encode("cafe\u0301"), tokenizer.encode("caf\u00e9"));
}

TEST_F(ByteBpeTokenizerTest, WriterIsDeterministic) {
  const json first = tiny_json();
  EXPECT_EQ(tiny_json(), first);
}

TEST_F(ByteBpeTokenizerTest, BadInputsGiveClearErrors) {
  const auto tokenizer = ByteBpeTokenizer::from_file(tiny_file());
  EXPECT_EQ(test::error_code_of([&] { tokenizer.encode("bad \xff byte"); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of([&] { tokenizer.token_id("<|nope|>"); }),
            ErrorCode::kInvalidArgument);
}

TEST_F(ByteBpeTokenizerTest, MissingOrCorruptFilesNameThePath) {
  const std::string missing = (dir_.path() / "absent.json").string();
  Error error = test::error_of([&] { ByteBpeTokenizer::from_file(missing); });
  EXPECT_EQ(error.code(), ErrorCode::kCorruptFile);
  EXPECT_NE(std::string(error.what()).find(missing), std::string::npos);

  const std::string broken = write("broken.json", "{\"model\": ");
  error = test::error_of([&] { ByteBpeTokenizer::from_file(broken); });
  EXPECT_EQ(error.code(), ErrorCode::kCorruptFile);
  EXPECT_NE(std::string(error.what()).find(broken), std::string::npos);
}

TEST_F(ByteBpeTokenizerTest, InconsistentFilesAreCorrupt) {
  json doc = tiny_json();
  doc["model"]["merges"].push_back({"Ġ", "nowhere"});
  const std::string unknown_merge = write("unknown_merge.json", doc.dump());
  EXPECT_EQ(test::error_code_of([&] { ByteBpeTokenizer::from_file(unknown_merge); }),
            ErrorCode::kCorruptFile);

  doc = tiny_json();
  doc["model"]["vocab"].erase("a");
  const std::string missing_byte = write("missing_byte.json", doc.dump());
  EXPECT_EQ(test::error_code_of([&] { ByteBpeTokenizer::from_file(missing_byte); }),
            ErrorCode::kCorruptFile);

  doc = tiny_json();
  doc["added_tokens"][0]["id"] = -3;
  const std::string bad_id = write("bad_id.json", doc.dump());
  EXPECT_EQ(test::error_code_of([&] { ByteBpeTokenizer::from_file(bad_id); }),
            ErrorCode::kCorruptFile);
}

TEST_F(ByteBpeTokenizerTest, OtherPipelinesAreUnsupported) {
  json doc = tiny_json();
  doc["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\s+";
  const std::string other_pattern = write("other_pattern.json", doc.dump());
  EXPECT_EQ(test::error_code_of([&] { ByteBpeTokenizer::from_file(other_pattern); }),
            ErrorCode::kUnsupported);

  doc = tiny_json();
  doc["model"]["type"] = "Unigram";
  const std::string unigram = write("unigram.json", doc.dump());
  EXPECT_EQ(test::error_code_of([&] { ByteBpeTokenizer::from_file(unigram); }),
            ErrorCode::kUnsupported);

  doc = tiny_json();
  doc["added_tokens"][1]["lstrip"] = true;
  const std::string lstrip = write("lstrip.json", doc.dump());
  EXPECT_EQ(test::error_code_of([&] { ByteBpeTokenizer::from_file(lstrip); }),
            ErrorCode::kUnsupported);

  doc = tiny_json();
  doc["normalizer"] = {{"type", "Lowercase"}};
  const std::string lowercase = write("lowercase.json", doc.dump());
  EXPECT_EQ(test::error_code_of([&] { ByteBpeTokenizer::from_file(lowercase); }),
            ErrorCode::kUnsupported);
}

std::map<std::string, std::vector<int64_t>> shapes_of(const Qwen3Config& config) {
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& tensor : qwen3_layout(config)) shapes.emplace(tensor.name, tensor.shape);
  return shapes;
}

TEST(Qwen3Config, DefaultsAreQwen3FourB) {
  const Qwen3Config config;
  EXPECT_EQ(config.hidden_size, 2560);
  EXPECT_EQ(config.num_hidden_layers, 36);
  EXPECT_EQ(config.num_attention_heads, 32);
  EXPECT_EQ(config.num_key_value_heads, 8);
  EXPECT_EQ(config.head_dim, 128);
  EXPECT_EQ(config.intermediate_size, 9728);
  EXPECT_EQ(config.rope_theta, 1e6);
  // embed_tokens, 11 tensors per layer, the final norm.
  EXPECT_EQ(qwen3_layout(config).size(), 2u + 11u * 36u);
}

TEST(Qwen3Config, JsonRoundTripsAndReadsOlderRopeFields) {
  const Qwen3Config tiny = tiny_qwen3_config(400);
  EXPECT_EQ(Qwen3Config::from_json(tiny.to_json()), tiny);
  json legacy = tiny.to_json();
  legacy.erase("rope_parameters");
  legacy["rope_theta"] = 5000.0;
  EXPECT_EQ(Qwen3Config::from_json(legacy).rope_theta, 5000.0);
  legacy["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  EXPECT_EQ(test::error_code_of([&] { Qwen3Config::from_json(legacy); }), ErrorCode::kUnsupported);
  EXPECT_EQ(test::error_code_of([&] { Qwen3Config::from_json(json::array()); }),
            ErrorCode::kCorruptFile);
  json bad = tiny.to_json();
  bad["hidden_size"] = "wide";
  EXPECT_EQ(test::error_code_of([&] { Qwen3Config::from_json(bad); }), ErrorCode::kCorruptFile);
  bad = tiny.to_json();
  bad["num_key_value_heads"] = 3;
  EXPECT_EQ(test::error_code_of([&] { Qwen3Config::from_json(bad); }), ErrorCode::kInvalidArgument);
}

TEST(Qwen3Config, InfersTheArchitectureFromShapes) {
  EXPECT_EQ(Qwen3Config::infer_from_keys(shapes_of(Qwen3Config())), Qwen3Config());
  const Qwen3Config tiny = tiny_qwen3_config(400);
  auto shapes = shapes_of(tiny);
  shapes.emplace("lm_head.weight", std::vector<int64_t>{400, 32});
  const Qwen3Config inferred = Qwen3Config::infer_from_keys(shapes);
  EXPECT_EQ(inferred.num_hidden_layers, 3);
  EXPECT_EQ(inferred.num_key_value_heads, 2);
  EXPECT_EQ(inferred.hidden_size, 32);
  EXPECT_EQ(inferred.vocab_size, 400);
  shapes.erase("model.layers.0.self_attn.q_norm.weight");
  EXPECT_EQ(test::error_code_of([&] { Qwen3Config::infer_from_keys(shapes); }),
            ErrorCode::kUnsupported);
  EXPECT_EQ(test::error_code_of([&] { Qwen3Config::infer_from_keys({}); }), ErrorCode::kUnsupported);
}

}  // namespace
}  // namespace df::engine

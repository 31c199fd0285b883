// Tests of ComfyUI prompt weighting: emphasis syntax, escapes, bad weights, chunking rules.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <utility>
#include <unistd.h>
#include <vector>

#include "core/error.h"
#include "engine/prompt_weights.h"
#include "engine/tiny_tokenizer.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

using Segments = std::vector<std::pair<std::string, float>>;

void expect_segments(const std::string& prompt, const Segments& expected) {
  const Segments actual = parse_prompt_weights(prompt);
  ASSERT_EQ(actual.size(), expected.size()) << prompt;
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(actual[i].first, expected[i].first) << prompt << " segment " << i;
    EXPECT_FLOAT_EQ(actual[i].second, expected[i].second) << prompt << " segment " << i;
  }
}

void expect_invalid(const std::string& prompt) {
  try {
    parse_prompt_weights(prompt);
    ADD_FAILURE() << "no error for " << prompt;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
  }
}

TEST(ParsePromptWeights, PlainTextIsOneSegment) {
  expect_segments("a cat, [sitting] on a mat", {{"a cat, [sitting] on a mat", 1.0f}});
  EXPECT_TRUE(parse_prompt_weights("").empty());
}

TEST(ParsePromptWeights, ParenthesesMultiplyByOnePointOneAndNest) {
  expect_segments("a (cat) b", {{"a ", 1.0f}, {"cat", 1.1f}, {" b", 1.0f}});
  expect_segments("((cat))", {{"cat", 1.21f}});
  expect_segments("(a (b (c)))", {{"a ", 1.1f}, {"b ", 1.21f}, {"c", 1.331f}});
}

TEST(ParsePromptWeights, ExplicitWeightsSetTheWeight) {
  expect_segments("(cat:1.5) dog", {{"cat", 1.5f}, {" dog", 1.0f}});
  expect_segments("((cat:0.5))", {{"cat", 0.5f}});
  expect_segments("((cat):1.5)", {{"cat", 1.65f}});
  expect_segments("(a (b):1.2)", {{"a ", 1.2f}, {"b", 1.32f}});
  expect_segments("(cat: 0.8 )", {{"cat", 0.8f}});
  expect_segments("(cat:-1)", {{"cat", -1.0f}});
  expect_segments("(cat:.5)", {{"cat", 0.5f}});
  expect_segments("(cat:2.)", {{"cat", 2.0f}});
  expect_segments("(cat:1e-1)", {{"cat", 0.1f}});
  expect_segments("(cat:1_0)", {{"cat", 10.0f}});
  expect_segments("(a:b:0.7)", {{"a:b", 0.7f}});
}

TEST(ParsePromptWeights, UnparsableWeightsKeepTheTextAndUseOnePointOne) {
  expect_segments("(cat:big)", {{"cat:big", 1.1f}});
  expect_segments("(cat:1.2.3)", {{"cat:1.2.3", 1.1f}});
  expect_segments("(cat:)", {{"cat:", 1.1f}});
  expect_segments("(:1.5)", {{":1.5", 1.1f}});  // a colon first is no weight
  expect_segments("(cat:1_)", {{"cat:1_", 1.1f}});
  expect_segments("(a:1.2 (b))", {{"a:1.2 ", 1.1f}, {"b", 1.21f}});
}

TEST(ParsePromptWeights, NonFiniteWeightsAreRejected) {
  expect_invalid("(cat:inf)");
  expect_invalid("(cat:-Infinity)");
  expect_invalid("(cat:nan)");
  expect_invalid("(cat:1e999)");
  expect_invalid("(cat:1e39)");      // beyond float range
  expect_invalid("((cat):3.2e38)");  // 1.1 times beyond float range
  expect_invalid("(cat:-nan) (dog)");
}

TEST(ParsePromptWeights, EscapedParenthesesAreLiteral) {
  expect_segments("\\(cat\\)", {{"(cat)", 1.0f}});
  expect_segments("(a \\(b\\))", {{"a (b)", 1.1f}});
  expect_segments("(smile \\:\\))", {{"smile \\:)", 1.1f}});
  expect_segments("a\\b", {{"a\\b", 1.0f}});
}

TEST(ParsePromptWeights, UnbalancedParenthesesStayText) {
  expect_segments("a (cat", {{"a ", 1.0f}, {"(cat", 1.0f}});
  expect_segments("a) cat", {{"a) cat", 1.0f}});
  expect_segments("(cat))", {{"cat", 1.1f}, {")", 1.0f}});
  // After a stray ')', a later '(' only brings the depth back to zero (ComfyUI's counter).
  expect_segments(") (cat)", {{") (cat)", 1.0f}});
  // "((cat)" is one group "(...)" around "(cat", whose '(' is never closed.
  expect_segments("((cat)", {{"(cat", 1.1f}});
}

TEST(ParsePromptWeights, TooDeepNestingIsRejected) {
  const int depth = 150;
  expect_invalid(std::string(depth, '(') + "cat" + std::string(depth, ')'));
  const auto fine = parse_prompt_weights(std::string(50, '(') + "cat" + std::string(50, ')'));
  ASSERT_EQ(fine.size(), 1u);
  EXPECT_FLOAT_EQ(fine[0].second, static_cast<float>(std::pow(1.1, 50)));
}

class TokenizeWeightedTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(
        fs::temp_directory_path() /
        ("df_prompt_weights_" + std::to_string(::getpid())));  // one per process: ctest runs in parallel
    write_tiny_clip_tokenizer(dir_->string(), "!");
    tokenizer_ = new ClipTokenizer(ClipTokenizer::load(dir_->string()));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete tokenizer_;
    delete dir_;
  }

  const ClipTokenizer& tokenizer() { return *tokenizer_; }
  int id(const std::string& token) { return tokenizer().token_id(token).value(); }

  // Checks the BOS / tokens / EOS / padding layout of one chunk and returns its tokens.
  std::vector<WeightedToken> body(const std::vector<WeightedToken>& chunk) {
    EXPECT_EQ(chunk.size(), 77u);
    EXPECT_EQ(chunk.front().id, tokenizer().bos_id());
    size_t end = 1;
    while (end < chunk.size() && chunk[end].id != tokenizer().eos_id()) ++end;
    EXPECT_LT(end, chunk.size());
    for (size_t i = end + 1; i < chunk.size(); ++i) EXPECT_EQ(chunk[i].id, tokenizer().pad_id());
    for (size_t i = end; i < chunk.size(); ++i) EXPECT_EQ(chunk[i].weight, 1.0f);
    EXPECT_EQ(chunk.front().weight, 1.0f);
    return {chunk.begin() + 1, chunk.begin() + static_cast<long>(end)};
  }

  // The token ids of all chunks' bodies, in order.
  std::vector<int> ids_of(const std::vector<std::vector<WeightedToken>>& chunks) {
    std::vector<int> ids;
    for (const auto& chunk : chunks) {
      for (const auto& token : body(chunk)) ids.push_back(token.id);
    }
    return ids;
  }

  // A word of `n` tokens: letters the tiny vocabulary never merges ("q" twice has no merge).
  std::string word_of(size_t n) {
    std::string word(n, 'q');
    EXPECT_EQ(tokenizer().encode_text(word).size(), n);
    return word;
  }

  static fs::path* dir_;
  static ClipTokenizer* tokenizer_;
};

fs::path* TokenizeWeightedTest::dir_ = nullptr;
ClipTokenizer* TokenizeWeightedTest::tokenizer_ = nullptr;

TEST_F(TokenizeWeightedTest, EmptyPromptIsOneEmptyChunk) {
  const auto chunks = tokenize_weighted(tokenizer(), "");
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_TRUE(body(chunks[0]).empty());
  EXPECT_EQ(chunks[0][1].id, tokenizer().eos_id());
  EXPECT_EQ(chunks[0][2].id, 0);
  EXPECT_FALSE(has_non_unit_weights(chunks));
}

TEST_F(TokenizeWeightedTest, InvalidUtf8IsRejectedAtItsOffsetInThePrompt) {
  try {
    tokenize_weighted(tokenizer(), "a (caf\xc3:1.2)");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("offset 6"), std::string::npos) << e.what();
  }
}

TEST_F(TokenizeWeightedTest, WeightsFollowTheirWords) {
  const auto chunks = tokenize_weighted(tokenizer(), "a (red:1.3) ((fox))");
  ASSERT_EQ(chunks.size(), 1u);
  const auto tokens = body(chunks[0]);
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_EQ(tokens[0].id, id("a</w>"));
  EXPECT_EQ(tokens[0].weight, 1.0f);
  EXPECT_EQ(tokens[1].id, id("red</w>"));
  EXPECT_EQ(tokens[1].weight, 1.3f);
  EXPECT_EQ(tokens[2].id, id("fox</w>"));
  EXPECT_EQ(tokens[2].weight, static_cast<float>(1.1 * 1.1));
  EXPECT_TRUE(has_non_unit_weights(chunks));
}

TEST_F(TokenizeWeightedTest, EachWeightedSegmentIsTokenizedWhole) {
  const std::string segment = "Red\nFOX,  it's \u00e9";
  EXPECT_EQ(ids_of(tokenize_weighted(tokenizer(), segment)), tokenizer().encode_text(segment));
  // The vocabulary has "\u00e9</w>" (the byte character 0xE9), but the letter is tokenized as
  // text: its two UTF-8 bytes.
  EXPECT_EQ(ids_of(tokenize_weighted(tokenizer(), "\u00e9")).size(), 2u);
  // Weighted parts are tokenized apart from their neighbours.
  const auto ids = ids_of(tokenize_weighted(tokenizer(), "painting(s:1.2)"));
  std::vector<int> expected = tokenizer().encode_text("painting");
  expected.push_back(id("s</w>"));
  EXPECT_EQ(ids, expected);
}

TEST_F(TokenizeWeightedTest, EmbeddingReferencesAreDroppedAndTheirTextKept) {
  auto same = [&](const std::string& prompt, const std::vector<std::string>& texts) {
    std::vector<int> expected;
    for (const std::string& text : texts) {
      const auto ids = tokenizer().encode_text(text);
      expected.insert(expected.end(), ids.begin(), ids.end());
    }
    EXPECT_EQ(ids_of(tokenize_weighted(tokenizer(), prompt)), expected) << prompt;
  };
  same("a red embedding:style fox", {"a red ", "fox"});
  same("embedding:style", {});
  same("(embedding:style:1.2) fox", {" fox"});
  same("a\u3000embedding:x\nembedding:y cat", {"a\u3000", "cat"});
  same("a,embedding:x cat", {"a,embedding:x cat"});        // not after whitespace: plain text
  same("a Embedding:x cat", {"a Embedding:x cat"});        // case matters
  same("a embedding:x,, cat", {"a ", ",, cat"});           // trailing commas stay
  same("a embedding:,x cat", {"a ", "x cat"});             // as many last characters as commas
  same("a embedding:x<lora:y:1> cat", {"a ", "<lora:y:1> cat"});
  same("a embedding:x[y] cat", {"a ", "[y] cat"});
  same("a embedding:\nx\n", {"a "});
  try {
    tokenize_weighted(tokenizer(), "a cat embedding:  ");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

TEST_F(TokenizeWeightedTest, LongPromptsContinueInNewChunks) {
  std::string prompt;
  for (int i = 0; i < 100; ++i) prompt += "cat ";
  const auto chunks = tokenize_weighted(tokenizer(), prompt);
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(body(chunks[0]).size(), 75u);
  EXPECT_EQ(body(chunks[1]).size(), 25u);
  for (const auto& token : body(chunks[1])) EXPECT_EQ(token.id, id("cat</w>"));
}

TEST_F(TokenizeWeightedTest, ShortSegmentThatOverflowsMovesToNextChunk) {
  std::string prompt;
  for (int i = 0; i < 72; ++i) prompt += "cat ";
  // Four tokens in one weighted segment: they move together although three would still fit.
  prompt += "(red fox dog cat:1.2)";
  const auto chunks = tokenize_weighted(tokenizer(), prompt);
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(body(chunks[0]).size(), 72u);
  const auto second = body(chunks[1]);
  ASSERT_EQ(second.size(), 4u);
  EXPECT_EQ(second[0].id, id("red</w>"));
  for (const auto& token : second) EXPECT_EQ(token.weight, 1.2f);
}

TEST_F(TokenizeWeightedTest, SevenTokenSegmentMovesEightTokenSegmentIsSplit) {
  std::string cats;
  for (int i = 0; i < 70; ++i) cats += "cat ";
  auto chunks = tokenize_weighted(tokenizer(), cats + "(" + word_of(7) + ")");
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(body(chunks[0]).size(), 70u);
  EXPECT_EQ(body(chunks[1]).size(), 7u);

  chunks = tokenize_weighted(tokenizer(), cats + "(" + word_of(8) + ":0.5)");
  ASSERT_EQ(chunks.size(), 2u);
  const auto first = body(chunks[0]);
  ASSERT_EQ(first.size(), 75u);
  EXPECT_EQ(first[74].weight, 0.5f);
  EXPECT_EQ(first[69].weight, 1.0f);
  const auto second = body(chunks[1]);
  ASSERT_EQ(second.size(), 3u);
  for (const auto& token : second) EXPECT_EQ(token.weight, 0.5f);
}

TEST_F(TokenizeWeightedTest, UnweightedPromptIsOneGroupSplitAtSeventyFive) {
  // 70 one-token words and a 7-token word: all one segment, so the word is cut at the boundary.
  std::string prompt;
  for (int i = 0; i < 70; ++i) prompt += "cat ";
  prompt += word_of(7);
  const auto chunks = tokenize_weighted(tokenizer(), prompt);
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(body(chunks[0]).size(), 75u);
  EXPECT_EQ(body(chunks[1]).size(), 2u);
}

TEST_F(TokenizeWeightedTest, VeryLongWordSpansSeveralChunks) {
  const auto chunks = tokenize_weighted(tokenizer(), word_of(160));
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(body(chunks[0]).size(), 75u);
  EXPECT_EQ(body(chunks[1]).size(), 75u);
  EXPECT_EQ(body(chunks[2]).size(), 10u);
}

TEST_F(TokenizeWeightedTest, WordFillingTheChunkExactlyStaysInIt) {
  std::string prompt;
  for (int i = 0; i < 74; ++i) prompt += "cat ";
  prompt += "dog";
  const auto chunks = tokenize_weighted(tokenizer(), prompt);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(body(chunks[0]).size(), 75u);
}

}  // namespace
}  // namespace df::engine

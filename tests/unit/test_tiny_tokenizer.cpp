// Tests of the tiny CLIP tokenizer writer: file layout, id structure, determinism, loadability.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "core/error.h"
#include "engine/tiny_tokenizer.h"
#include "engine/tokenizer.h"
#include "test_support.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

class TinyTokenizerTest : public ::testing::Test {
 protected:
  std::string read(const std::string& name, const fs::path& dir) const {
    std::ifstream in(dir / name, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  std::string read(const std::string& name) const { return read(name, dir_.path()); }

  test::TestDir dir_{"df_tiny_tokenizer_"};
};

TEST_F(TinyTokenizerTest, VocabularyHasTheClipStructure) {
  write_tiny_clip_tokenizer(dir_.path().string(), "<|endoftext|>");
  const auto vocab = nlohmann::json::parse(read("vocab.json"));
  const int size = tiny_clip_vocab_size();
  EXPECT_LE(size, 1000);
  EXPECT_GT(size, 512 + 100);  // enough merges for multi-character tokens
  ASSERT_EQ(static_cast<int>(vocab.size()), size);

  // As in CLIP: the 188 printable bytes (standing for themselves) in byte order, then the
  // other 68 bytes, whose characters are U+0100 onwards.
  const auto& alphabet = byte_level_alphabet();
  auto printable = [](int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
  };
  int next_id = 0;
  for (bool printable_pass : {true, false}) {
    for (int byte = 0; byte < 256; ++byte) {
      if (printable(byte) != printable_pass) continue;
      EXPECT_EQ(vocab.at(alphabet[byte]).get<int>(), next_id) << byte;
      EXPECT_EQ(vocab.at(alphabet[byte] + "</w>").get<int>(), 256 + next_id) << byte;
      ++next_id;
    }
  }
  EXPECT_EQ(vocab.at("!").get<int>(), 0);
  EXPECT_EQ(vocab.at("!</w>").get<int>(), 256);
  EXPECT_EQ(vocab.at("\u0100").get<int>(), 188);
  EXPECT_EQ(vocab.at("<|startoftext|>").get<int>(), size - 2);
  EXPECT_EQ(vocab.at("<|endoftext|>").get<int>(), size - 1);
}

TEST_F(TinyTokenizerTest, MergesFollowTheVocabularyInOrder) {
  write_tiny_clip_tokenizer(dir_.path().string(), "<|endoftext|>");
  const auto vocab = nlohmann::json::parse(read("vocab.json"));
  std::istringstream merges(read("merges.txt"));
  std::string line;
  ASSERT_TRUE(std::getline(merges, line));
  EXPECT_EQ(line, "#version: 0.2");
  int expected_id = 512;
  while (std::getline(merges, line)) {
    const size_t space = line.find(' ');
    ASSERT_NE(space, std::string::npos) << line;
    const std::string left = line.substr(0, space), right = line.substr(space + 1);
    EXPECT_TRUE(vocab.contains(left)) << line;
    EXPECT_TRUE(vocab.contains(right)) << line;
    EXPECT_EQ(vocab.at(left + right).get<int>(), expected_id++) << line;
  }
  EXPECT_EQ(expected_id, tiny_clip_vocab_size() - 2);
}

TEST_F(TinyTokenizerTest, SpecialTokenFilesNameThePadStyle) {
  write_tiny_clip_tokenizer(dir_.path().string(), "!");
  const auto special = nlohmann::json::parse(read("special_tokens_map.json"));
  EXPECT_EQ(special.at("bos_token"), "<|startoftext|>");
  EXPECT_EQ(special.at("eos_token"), "<|endoftext|>");
  EXPECT_EQ(special.at("unk_token"), "<|endoftext|>");
  EXPECT_EQ(special.at("pad_token"), "!");
  const auto config = nlohmann::json::parse(read("tokenizer_config.json"));
  EXPECT_EQ(config.at("tokenizer_class"), "CLIPTokenizer");
  EXPECT_EQ(config.at("model_max_length"), 77);
  EXPECT_EQ(config.at("do_lower_case"), true);
}

TEST_F(TinyTokenizerTest, OutputIsDeterministic) {
  write_tiny_clip_tokenizer(dir_.path().string(), "<|endoftext|>");
  const fs::path again = dir_.path() / "again";
  write_tiny_clip_tokenizer(again.string(), "<|endoftext|>");
  for (const char* name :
       {"vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"}) {
    EXPECT_EQ(read(name), read(name, again)) << name;
  }
}

TEST_F(TinyTokenizerTest, LoadsAndEncodesCommonWordsAsWholeTokens) {
  write_tiny_clip_tokenizer(dir_.path().string(), "<|endoftext|>");
  const auto tokenizer = ClipTokenizer::load(dir_.path().string());
  EXPECT_EQ(tokenizer.eos_id(), tiny_clip_vocab_size() - 1);
  EXPECT_EQ(tokenizer.bos_id(), tiny_clip_vocab_size() - 2);
  EXPECT_EQ(tokenizer.pad_id(), tokenizer.eos_id());
  const auto ids = tokenizer.encode_text("a painting of a squirrel");
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_EQ(ids[1], tokenizer.token_id("painting</w>"));
  EXPECT_EQ(ids[4], tokenizer.token_id("squirrel</w>"));
}

TEST_F(TinyTokenizerTest, SecondTokenizerStylePadsWithExclamationMark) {
  write_tiny_clip_tokenizer(dir_.path().string(), "!");
  EXPECT_EQ(ClipTokenizer::load(dir_.path().string()).pad_id(), 0);
}

TEST_F(TinyTokenizerTest, RejectsPadTokenOutsideTheVocabulary) {
  try {
    write_tiny_clip_tokenizer(dir_.path().string(), "<pad>");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace df::engine

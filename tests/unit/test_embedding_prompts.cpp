// Tests of textual-inversion embeddings in prompts: slots, weights, chunking, file search.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

#include "engine/embedding_files.h"
#include "engine/prompt_weights.h"
#include "engine/tiny_tokenizer.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

class EmbeddingPromptTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() /
                        ("df_embedding_prompts_" + std::to_string(::getpid())));
    write_tiny_clip_tokenizer(dir_->string(), "!");
    tokenizer_ = new ClipTokenizer(ClipTokenizer::load(dir_->string()));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete tokenizer_;
    delete dir_;
  }

  const ClipTokenizer& tokenizer() { return *tokenizer_; }

  // A lookup that knows `known` (name -> vector count), numbering them in lookup order and
  // recording every name asked for.
  EmbeddingLookup lookup(std::map<std::string, int> known) {
    return [this, known](const std::string& name) -> std::optional<EmbeddingSlots> {
      asked_.push_back(name);
      auto it = known.find(name);
      if (it == known.end()) return std::nullopt;
      return EmbeddingSlots{next_index_++, it->second};
    };
  }

  // The positions between BOS and EOS of a chunk.
  std::vector<WeightedToken> body(const std::vector<WeightedToken>& chunk) {
    size_t end = 1;
    while (end < chunk.size() && chunk[end].id != tokenizer().eos_id()) ++end;
    return {chunk.begin() + 1, chunk.begin() + static_cast<long>(end)};
  }

  std::vector<std::string> asked_;
  int next_index_ = 0;
  static fs::path* dir_;
  static ClipTokenizer* tokenizer_;
};

fs::path* EmbeddingPromptTest::dir_ = nullptr;
ClipTokenizer* EmbeddingPromptTest::tokenizer_ = nullptr;

TEST_F(EmbeddingPromptTest, EmbeddingVectorsBecomeSlotsWithTheSegmentsWeight) {
  const auto chunks = tokenize_weighted(tokenizer(), "a (embedding:style.safetensors:1.2) fox",
                                        lookup({{"style.safetensors", 3}}));
  ASSERT_EQ(chunks.size(), 1u);
  const auto tokens = body(chunks[0]);
  const auto a = tokenizer().encode_text("a ");
  const auto fox = tokenizer().encode_text(" fox");
  ASSERT_EQ(tokens.size(), a.size() + 3 + fox.size());
  for (int row = 0; row < 3; ++row) {
    const WeightedToken& slot = tokens[a.size() + static_cast<size_t>(row)];
    EXPECT_EQ(slot.id, WeightedToken::kNoToken);
    EXPECT_EQ(slot.embedding, 0);
    EXPECT_EQ(slot.embedding_row, row);
    EXPECT_FLOAT_EQ(slot.weight, 1.2f);
  }
  EXPECT_EQ(tokens.back().id, fox.back());
  EXPECT_EQ(tokens.back().embedding, -1);
  EXPECT_EQ(asked_, std::vector<std::string>{"style.safetensors"});
}

TEST_F(EmbeddingPromptTest, MissingEmbeddingsAreDroppedAndTheirTextKept) {
  const auto lookup_none = lookup({});
  const auto with_lookup = tokenize_weighted(tokenizer(), "a embedding:gone fox", lookup_none);
  const auto without = tokenize_weighted(tokenizer(), "a embedding:gone fox");
  EXPECT_EQ(body(with_lookup[0]).size(), tokenizer().encode_text("a fox").size());
  EXPECT_EQ(body(without[0]).size(), body(with_lookup[0]).size());
  EXPECT_EQ(asked_, std::vector<std::string>{"gone"});
}

TEST_F(EmbeddingPromptTest, CommasAroundTheNameAreStrippedForASecondTry) {
  const auto chunks =
      tokenize_weighted(tokenizer(), "embedding:style, fox", lookup({{"style", 1}}));
  EXPECT_EQ(asked_, (std::vector<std::string>{"style,", "style"}));
  const auto tokens = body(chunks[0]);
  ASSERT_FALSE(tokens.empty());
  EXPECT_EQ(tokens[0].embedding, 0);
  // The stripped comma stays text, before the rest.
  const auto rest = tokenizer().encode_text(", fox");
  ASSERT_EQ(tokens.size(), 1 + rest.size());
  for (size_t i = 0; i < rest.size(); ++i) EXPECT_EQ(tokens[1 + i].id, rest[i]);
}

TEST_F(EmbeddingPromptTest, ShortEmbeddingsMoveWholeToTheNextChunk) {
  std::string prompt;
  for (int i = 0; i < 73; ++i) prompt += "cat ";
  ASSERT_EQ(tokenizer().encode_text(prompt).size(), 73u);
  const auto chunks = tokenize_weighted(tokenizer(), prompt + "embedding:e", lookup({{"e", 4}}));
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(body(chunks[0]).size(), 73u);  // 2 positions were free: 4 vectors do not fit
  const auto second = body(chunks[1]);
  ASSERT_EQ(second.size(), 4u);
  for (const auto& slot : second) EXPECT_EQ(slot.embedding, 0);
}

TEST_F(EmbeddingPromptTest, LongEmbeddingsFillTheChunkAndContinue) {
  std::string prompt;
  for (int i = 0; i < 73; ++i) prompt += "cat ";
  const auto chunks = tokenize_weighted(tokenizer(), prompt + "embedding:e", lookup({{"e", 8}}));
  ASSERT_EQ(chunks.size(), 2u);
  const auto first = body(chunks[0]);
  ASSERT_EQ(first.size(), 75u);
  EXPECT_EQ(first[73].embedding_row, 0);
  EXPECT_EQ(first[74].embedding_row, 1);
  const auto second = body(chunks[1]);
  ASSERT_EQ(second.size(), 6u);
  EXPECT_EQ(second.front().embedding_row, 2);
  EXPECT_EQ(second.back().embedding_row, 7);
}

class EmbeddingFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("df_embedding_files_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "embeddings" / "styles" / "deep");
    fs::create_directories(root_ / "other");
  }
  void TearDown() override { fs::remove_all(root_); }
  void touch(const fs::path& path) { std::ofstream(path) << "x"; }
  std::optional<std::string> find(const std::string& name) {
    return find_embedding_file({(root_ / "embeddings").string()}, name);
  }

  fs::path root_;
};

TEST_F(EmbeddingFileTest, NamesAreFoundWithOrWithoutExtensionAndInSubfolders) {
  touch(root_ / "embeddings" / "plain.safetensors");
  touch(root_ / "embeddings" / "styles" / "deep" / "nested.safetensors");
  touch(root_ / "embeddings" / "old.pt");
  EXPECT_EQ(find("plain"), (root_ / "embeddings" / "plain.safetensors").string());
  EXPECT_EQ(find("plain.safetensors"), (root_ / "embeddings" / "plain.safetensors").string());
  EXPECT_EQ(find("nested"), (root_ / "embeddings" / "styles" / "deep" / "nested.safetensors").string());
  EXPECT_EQ(find("styles/deep/nested"),
            (root_ / "embeddings" / "styles" / "deep" / "nested.safetensors").string());
  EXPECT_EQ(find("old"), (root_ / "embeddings" / "old.pt").string());  // refused when loaded
  EXPECT_EQ(find("missing"), std::nullopt);
  EXPECT_EQ(find(""), std::nullopt);
}

TEST_F(EmbeddingFileTest, NamesLeavingTheFolderAreNotLookedUp) {
  touch(root_ / "other" / "secret.safetensors");
  EXPECT_EQ(find("../other/secret"), std::nullopt);
  EXPECT_EQ(find((root_ / "other" / "secret.safetensors").string()), std::nullopt);
  EXPECT_EQ(find_embedding_file({(root_ / "absent").string()}, "x"), std::nullopt);
}

}  // namespace
}  // namespace df::engine

// Tests of ClipTokenizer: normalisation, pre-tokenisation, BPE merge order, specials, file errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "engine/tiny_tokenizer.h"
#include "engine/tokenizer.h"
#include "test_support.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

class TokenizerTest : public ::testing::Test {
 protected:
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_.path() / name, std::ios::binary) << text;
  }

  ClipTokenizer tiny(const std::string& pad = "<|endoftext|>") {
    write_tiny_clip_tokenizer(dir_.path().string(), pad);
    return ClipTokenizer::load(dir_.path().string());
  }

  int id(const ClipTokenizer& tokenizer, const std::string& token) {
    auto found = tokenizer.token_id(token);
    EXPECT_TRUE(found.has_value()) << token;
    return found.value_or(-1);
  }

  // Expects load() to fail with kCorruptFile; returns the message.
  std::string load_error() {
    try {
      ClipTokenizer::load(dir_.path().string());
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorruptFile) << e.what();
      return e.what();
    }
    ADD_FAILURE() << "no error";
    return "";
  }

  // A hand-made vocabulary over the letters a, b, c.
  void write_abc_tokenizer(const std::string& merges) {
    write("vocab.json", abc_vocab_json());
    write("merges.txt", merges);
  }

  // The abc vocabulary as a tokenizer.json (the layout transformers 5 saves), merges in `merges`
  // ("a b" strings or ["a", "b"] pairs) and extra `added_tokens`.
  void write_abc_tokenizer_json(const nlohmann::json& merges,
                                const nlohmann::json& added_tokens = nlohmann::json::array()) {
    nlohmann::json added = {
        {{"id", 9}, {"content", "<|startoftext|>"}, {"normalized", false}, {"special", true}},
        {{"id", 10}, {"content", "<|endoftext|>"}, {"normalized", false}, {"special", true}}};
    for (const auto& token : added_tokens) added.push_back(token);
    const nlohmann::json doc = {
        {"version", "1.0"},
        {"added_tokens", added},
        {"model",
         {{"type", "BPE"},
          {"unk_token", "<|endoftext|>"},
          {"end_of_word_suffix", "</w>"},
          {"vocab", nlohmann::json::parse(abc_vocab_json())},
          {"merges", merges}}}};
    write("tokenizer.json", doc.dump());
    write("tokenizer_config.json",
          R"({"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
              "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"})");
  }

  static std::string abc_vocab_json() {
    return R"({"a": 0, "b": 1, "c": 2, "a</w>": 3, "b</w>": 4, "c</w>": 5, "ab": 6, "bc</w>": 7,
               "abc</w>": 8, "<|startoftext|>": 9, "<|endoftext|>": 10})";
  }

  std::string read(const std::string& name) {
    std::ifstream in(dir_.path() / name, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

  // Rewrites the vocab.json + merges.txt in dir_ as the tokenizer.json transformers 5 would save.
  void convert_to_tokenizer_json() {
    const auto vocab = nlohmann::json::parse(read("vocab.json"));
    nlohmann::json merges = nlohmann::json::array();
    std::istringstream lines(read("merges.txt"));
    std::string line;
    while (std::getline(lines, line)) {
      if (line.empty() || line.starts_with("#version")) continue;
      const size_t space = line.find(' ');
      merges.push_back({line.substr(0, space), line.substr(space + 1)});
    }
    nlohmann::json added = nlohmann::json::array();
    for (const char* token : {"<|startoftext|>", "<|endoftext|>"}) {
      added.push_back({{"id", vocab.at(token)}, {"content", token}, {"normalized", false},
                       {"special", true}});
    }
    const nlohmann::json doc = {{"added_tokens", added},
                                {"model",
                                 {{"type", "BPE"},
                                  {"end_of_word_suffix", "</w>"},
                                  {"vocab", vocab},
                                  {"merges", merges}}}};
    write("tokenizer.json", doc.dump());
    fs::remove(dir_.path() / "vocab.json");
    fs::remove(dir_.path() / "merges.txt");
    fs::remove(dir_.path() / "special_tokens_map.json");
  }

  test::TestDir dir_{"df_tokenizer_"};
};

const char* const kMixedPrompts[] = {
    "a painting of a squirrel eating a burger", "A RED fox, 8k, it's   fine!!",
    "caf\u00e9 \u65e5\u672c <|endoftext|> x<|startoftext|>", "", "!!!", "masterpiece (best)"};

TEST_F(TokenizerTest, EncodePadsToSeventySevenWithBosAndEos) {
  const auto tokenizer = tiny();
  const auto ids = tokenizer.encode("a squirrel");
  ASSERT_EQ(ids.size(), 77u);
  EXPECT_EQ(ids[0], tokenizer.bos_id());
  EXPECT_EQ(ids[1], id(tokenizer, "a</w>"));
  EXPECT_EQ(ids[2], id(tokenizer, "squirrel</w>"));
  EXPECT_EQ(ids[3], tokenizer.eos_id());
  for (size_t i = 4; i < ids.size(); ++i) EXPECT_EQ(ids[i], tokenizer.pad_id());
}

TEST_F(TokenizerTest, EncodeTruncatesLongTextKeepingEos) {
  const auto tokenizer = tiny();
  std::string text;
  for (int i = 0; i < 100; ++i) text += "cat ";
  const auto ids = tokenizer.encode(text);
  ASSERT_EQ(ids.size(), 77u);
  EXPECT_EQ(ids[0], tokenizer.bos_id());
  for (size_t i = 1; i < 76; ++i) EXPECT_EQ(ids[i], id(tokenizer, "cat</w>"));
  EXPECT_EQ(ids[76], tokenizer.eos_id());
}

TEST_F(TokenizerTest, EmptyTextIsBosEosPadding) {
  const auto tokenizer = tiny("!");
  EXPECT_TRUE(tokenizer.encode_text("").empty());
  EXPECT_TRUE(tokenizer.encode_text(" \t\n ").empty());
  const auto ids = tokenizer.encode("");
  EXPECT_EQ(ids[0], tokenizer.bos_id());
  EXPECT_EQ(ids[1], tokenizer.eos_id());
  EXPECT_EQ(ids[2], 0);
}

TEST_F(TokenizerTest, LowercasesAndCollapsesWhitespace) {
  const auto tokenizer = tiny();
  const auto expected = tokenizer.encode_text("a red fox");
  EXPECT_EQ(tokenizer.encode_text("A RED Fox"), expected);
  EXPECT_EQ(tokenizer.encode_text("  a\tred\n\n fox\u3000"), expected);
  EXPECT_EQ(tokenizer.encode_text("a\u00a0red\u2028fox"), expected);
}

TEST_F(TokenizerTest, NormalisesToNfcBeforeEncoding) {
  const auto tokenizer = tiny();
  EXPECT_EQ(tokenizer.encode_text("cafe\u0301"), tokenizer.encode_text("caf\u00e9"));
  EXPECT_EQ(tokenizer.encode_text("CAF\u00c9"), tokenizer.encode_text("caf\u00e9"));
}

TEST_F(TokenizerTest, DottedCapitalILowercasesToTwoCodePoints) {
  const auto tokenizer = tiny();
  // "i" + U+0307: the letter run stops before the combining mark, which is a symbol piece.
  EXPECT_EQ(tokenizer.encode_text("\u0130"), tokenizer.encode_text("i \u0307"));
}

TEST_F(TokenizerTest, SplitsContractionsDigitsAndSymbolRuns) {
  const auto tokenizer = tiny();
  EXPECT_EQ(tokenizer.encode_text("it's"), tokenizer.encode_text("it 's"));
  EXPECT_EQ(tokenizer.encode_text("we'll"), tokenizer.encode_text("we 'll"));
  EXPECT_EQ(tokenizer.encode_text("'sa"), tokenizer.encode_text("'s a"));
  // A symbol run is greedy: "!'" is one piece, then "s".
  EXPECT_EQ(tokenizer.encode_text("!'s"), tokenizer.encode_text("!' s"));
  EXPECT_EQ(
      tokenizer.encode_text("123"),
      (std::vector<int>{id(tokenizer, "1</w>"), id(tokenizer, "2</w>"), id(tokenizer, "3</w>")}));
  EXPECT_EQ(tokenizer.encode_text("cat,dog"), tokenizer.encode_text("cat , dog"));
  EXPECT_EQ(tokenizer.encode_text("..."),
            (std::vector<int>{id(tokenizer, "."), id(tokenizer, "."), id(tokenizer, ".</w>")}));
}

TEST_F(TokenizerTest, EncodesNonAsciiAsByteCharacters) {
  const auto tokenizer = tiny();
  const auto& alphabet = byte_level_alphabet();
  // U+65E5 is E6 97 A5 in UTF-8.
  EXPECT_EQ(tokenizer.encode_text("\u65e5"),
            (std::vector<int>{id(tokenizer, alphabet[0xE6]), id(tokenizer, alphabet[0x97]),
                              id(tokenizer, alphabet[0xA5] + "</w>")}));
  // A control character is kept as its byte.
  EXPECT_EQ(tokenizer.encode_text(std::string("\x01", 1)),
            (std::vector<int>{id(tokenizer, alphabet[0x01] + "</w>")}));
}

TEST_F(TokenizerTest, ByteLevelAlphabetMatchesGpt2Mapping) {
  const auto& alphabet = byte_level_alphabet();
  ASSERT_EQ(alphabet.size(), 256u);
  EXPECT_EQ(alphabet['!'], "!");
  EXPECT_EQ(alphabet['a'], "a");
  EXPECT_EQ(alphabet[0xE9], "\u00e9");
  EXPECT_EQ(alphabet[0], "\u0100");
  EXPECT_EQ(alphabet[' '], "\u0120");
  EXPECT_EQ(alphabet[0xAD], "\u0143");
}

TEST_F(TokenizerTest, CutsSpecialTokensOutOfRawText) {
  const auto tokenizer = tiny();
  EXPECT_EQ(tokenizer.encode_text("a<|endoftext|>cat<|startoftext|>"),
            (std::vector<int>{id(tokenizer, "a</w>"), tokenizer.eos_id(), id(tokenizer, "cat</w>"),
                              tokenizer.bos_id()}));
  // Only the exact spelling is special; other cases are ordinary text.
  EXPECT_EQ(tokenizer.encode_text("<|ENDOFTEXT|>"), tokenizer.encode_text("<| endoftext |>"));
  // Spelled out at the start of a piece it is a group of its own, not part of a symbol run...
  EXPECT_EQ(tokenizer.encode_text("<|STARTOFTEXT|>#!"),
            tokenizer.encode_text("<| startoftext |> #!"));
  // ...but a symbol run that starts earlier swallows its "<|".
  EXPECT_EQ(tokenizer.encode_text("#<|ENDOFTEXT|>"), tokenizer.encode_text("#<| endoftext |>"));
}

TEST_F(TokenizerTest, ExclamationPadTokenIsSpecialInText) {
  const auto tokenizer = tiny("!");
  EXPECT_EQ(tokenizer.encode_text("cat!!"), (std::vector<int>{id(tokenizer, "cat</w>"), 0, 0}));
}

TEST_F(TokenizerTest, AppliesMergesByRank) {
  write_abc_tokenizer("#version: 0.2\nb c</w>\na b\na bc</w>\n");
  auto tokenizer = ClipTokenizer::load(dir_.path().string());
  EXPECT_EQ(tokenizer.encode_text("abc"),
            (std::vector<int>{8}));  // a b c</w> -> a bc</w> -> abc</w>

  write_abc_tokenizer("#version: 0.2\na b\nb c</w>\na bc</w>\n");
  tokenizer = ClipTokenizer::load(dir_.path().string());
  EXPECT_EQ(tokenizer.encode_text("abc"), (std::vector<int>{6, 5}));  // a b first: ab c</w>
  EXPECT_EQ(tokenizer.encode_text("ababc"), (std::vector<int>{6, 6, 5}));
  // Unknown characters become the unknown token (<|endoftext|>).
  EXPECT_EQ(tokenizer.encode_text("d"), (std::vector<int>{10}));
}

TEST_F(TokenizerTest, CopiesShareOneThreadSafeCache) {
  const auto tokenizer = tiny();
  const auto expected = tokenizer.encode("a beautiful painting of a castle, highly detailed");
  std::vector<std::thread> threads;
  std::vector<char> same(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t, copy = tokenizer] {
      bool all = true;
      for (int i = 0; i < 200; ++i) {
        all = all && copy.encode("a beautiful painting of a castle, highly detailed") == expected;
        copy.encode_text("word" + std::to_string(t * 1000 + i));
      }
      same[t] = all;
    });
  }
  for (auto& thread : threads) thread.join();
  for (char ok : same) EXPECT_TRUE(ok);
}

TEST_F(TokenizerTest, RejectsInvalidUtf8) {
  const auto tokenizer = tiny();
  try {
    tokenizer.encode_text("caf\xc3");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

TEST_F(TokenizerTest, SpecialTokensMapOverridesTokenizerConfig) {
  write_abc_tokenizer("#version: 0.2\na b\n");
  write("tokenizer_config.json",
        R"({"pad_token": "<|startoftext|>", "bos_token": "<|startoftext|>"})");
  EXPECT_EQ(ClipTokenizer::load(dir_.path().string()).pad_id(), 9);
  write("special_tokens_map.json", R"({"pad_token": {"content": "a", "lstrip": false}})");
  EXPECT_EQ(ClipTokenizer::load(dir_.path().string()).pad_id(), 0);
}

TEST_F(TokenizerTest, MissingFilesAreCorrupt) {
  EXPECT_NE(load_error().find("vocab.json"), std::string::npos);
  write_abc_tokenizer("");
  fs::remove(dir_.path() / "merges.txt");
  EXPECT_NE(load_error().find("merges.txt"), std::string::npos);
}

TEST_F(TokenizerTest, GarbledVocabIsCorrupt) {
  write("merges.txt", "#version: 0.2\na b\n");
  write("vocab.json", "{\"a\": 0, ");
  EXPECT_NE(load_error().find("not valid JSON"), std::string::npos);
  write("vocab.json", "[1, 2]");
  load_error();
  write("vocab.json", R"({"a": "zero"})");
  EXPECT_NE(load_error().find("'a'"), std::string::npos);
}

TEST_F(TokenizerTest, GarbledMergesAreCorrupt) {
  write_abc_tokenizer("#version: 0.2\na b c\n");
  EXPECT_NE(load_error().find("line 2"), std::string::npos);
  write_abc_tokenizer("#version: 0.2\na x\n");
  EXPECT_NE(load_error().find("'x'"), std::string::npos);
  write_abc_tokenizer("#version: 0.2\nc a\n");  // "ca" is not in the vocabulary
  EXPECT_NE(load_error().find("'ca'"), std::string::npos);
  write_abc_tokenizer("#version: 0.2\n");
  EXPECT_NE(load_error().find("no merges"), std::string::npos);
}

TEST_F(TokenizerTest, SpecialTokenMissingFromVocabIsCorrupt) {
  write_abc_tokenizer("#version: 0.2\na b\n");
  write("special_tokens_map.json", R"({"pad_token": "<pad>"})");
  EXPECT_NE(load_error().find("<pad>"), std::string::npos);
}

TEST_F(TokenizerTest, ReadsTokenizerJsonWhenVocabAndMergesAreAbsent) {
  for (const char* merges : {R"(["b c</w>", "a b", "a bc</w>"])",
                             R"([["b", "c</w>"], ["a", "b"], ["a", "bc</w>"]])"}) {
    write_abc_tokenizer_json(nlohmann::json::parse(merges));
    const auto tokenizer = ClipTokenizer::load(dir_.path().string());
    EXPECT_EQ(tokenizer.encode_text("abc"), (std::vector<int>{8}));
    EXPECT_EQ(tokenizer.encode_text("abab"), (std::vector<int>{6, 0, 4}));
    EXPECT_EQ(tokenizer.bos_id(), 9);
    EXPECT_EQ(tokenizer.eos_id(), 10);
    EXPECT_EQ(tokenizer.pad_id(), 10);
  }
}

TEST_F(TokenizerTest, TokenizerJsonGivesTheSameIdsAsVocabAndMerges) {
  for (const std::string pad : {"<|endoftext|>", "!"}) {
    const auto split_files = tiny(pad);
    convert_to_tokenizer_json();
    write("tokenizer_config.json", nlohmann::json{{"pad_token", {{"content", pad}}}}.dump());
    const auto converted = ClipTokenizer::load(dir_.path().string());
    EXPECT_EQ(converted.pad_id(), split_files.pad_id());
    for (const char* prompt : kMixedPrompts) {
      EXPECT_EQ(converted.encode(prompt), split_files.encode(prompt)) << prompt << " pad " << pad;
    }
  }
}

TEST_F(TokenizerTest, VocabAndMergesWinOverTokenizerJson) {
  write_abc_tokenizer_json(nlohmann::json{"a b"});
  write_abc_tokenizer("#version: 0.2\nb c</w>\na bc</w>\n");
  EXPECT_EQ(ClipTokenizer::load(dir_.path().string()).encode_text("abc"), (std::vector<int>{8}));
}

TEST_F(TokenizerTest, AddedTokensOfTokenizerJsonAreCutOutOfTheText) {
  write_abc_tokenizer_json(nlohmann::json{"a b"},
                           {{{"id", 11}, {"content", "<pad>"}, {"special", true}},
                            {{"id", 12}, {"content", "Cc"}, {"normalized", true}}});
  const auto tokenizer = ClipTokenizer::load(dir_.path().string());
  EXPECT_EQ(tokenizer.token_id("<pad>"), 11);
  // "<pad>" (special, so not normalised) is matched in the raw text only.
  EXPECT_EQ(tokenizer.encode_text("a<pad>b"), (std::vector<int>{3, 11, 4}));
  EXPECT_EQ(tokenizer.encode_text("a<PAD>"), tokenizer.encode_text("a < pad >"));
  // "Cc" is normalised to "cc" and matched in the lowercased text.
  EXPECT_EQ(tokenizer.encode_text("aCCb"), (std::vector<int>{3, 12, 4}));
  EXPECT_EQ(tokenizer.encode_text("acc"), (std::vector<int>{3, 12}));
}

TEST_F(TokenizerTest, NormalizedSpecialTokenMatchesAnyCase) {
  write_abc_tokenizer_json(nlohmann::json{"a b"});
  auto doc = nlohmann::json::parse(read("tokenizer.json"));
  for (auto& token : doc.at("added_tokens")) token["normalized"] = true;
  write("tokenizer.json", doc.dump());
  EXPECT_EQ(ClipTokenizer::load(dir_.path().string()).encode_text("a<|ENDOFTEXT|>b"),
            (std::vector<int>{3, 10, 4}));
}

TEST_F(TokenizerTest, TokenizerJsonOfAnotherModelIsUnsupported) {
  write_abc_tokenizer_json(nlohmann::json{"a b"});
  auto doc = nlohmann::json::parse(read("tokenizer.json"));
  doc["model"]["type"] = "Unigram";
  write("tokenizer.json", doc.dump());
  try {
    ClipTokenizer::load(dir_.path().string());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported) << e.what();
  }
  doc["model"]["type"] = "BPE";
  doc["model"]["end_of_word_suffix"] = nullptr;  // GPT-2 style BPE
  write("tokenizer.json", doc.dump());
  EXPECT_THROW(ClipTokenizer::load(dir_.path().string()), Error);
}

TEST_F(TokenizerTest, GarbledTokenizerJsonIsCorrupt) {
  write_abc_tokenizer_json(nlohmann::json{"a b", "a b c"});
  EXPECT_NE(load_error().find("merge 1"), std::string::npos);
  write_abc_tokenizer_json(nlohmann::json::parse(R"([["a"]])"));
  EXPECT_NE(load_error().find("merge 0"), std::string::npos);
  write_abc_tokenizer_json(nlohmann::json{"c a"});
  EXPECT_NE(load_error().find("'ca'"), std::string::npos);
  write_abc_tokenizer_json(nlohmann::json::array());
  EXPECT_NE(load_error().find("no merges"), std::string::npos);
  write_abc_tokenizer_json(nlohmann::json{"a b"}, {{{"content", "x"}}});
  EXPECT_NE(load_error().find("no valid id"), std::string::npos);
  write("tokenizer.json", R"({"model": {"type": "BPE", "end_of_word_suffix": "</w>"}})");
  EXPECT_NE(load_error().find("model.vocab"), std::string::npos);
  write("tokenizer.json", "{\"model\": ");
  EXPECT_NE(load_error().find("not valid JSON"), std::string::npos);
}

TEST_F(TokenizerTest, PadOverrideChangesOnlyThePaddingId) {
  const auto files_pad = tiny("<|endoftext|>");
  const auto bang_pad = ClipTokenizer::load(dir_.path().string(), "!");
  EXPECT_EQ(bang_pad.pad_id(), 0);
  EXPECT_EQ(bang_pad.eos_id(), files_pad.eos_id());
  // "!" stays ordinary text: it is not cut out as a special token.
  EXPECT_EQ(bang_pad.encode_text("cat!!"), files_pad.encode_text("cat!!"));
  const auto ids = bang_pad.encode("cat");
  EXPECT_EQ(ids[2], bang_pad.eos_id());
  for (size_t i = 3; i < ids.size(); ++i) EXPECT_EQ(ids[i], 0);
  EXPECT_EQ(ClipTokenizer::load(dir_.path().string(), "").pad_id(), files_pad.eos_id());
}

TEST_F(TokenizerTest, PadOverrideOutsideTheVocabularyIsCorrupt) {
  tiny();
  try {
    ClipTokenizer::load(dir_.path().string(), "<pad>");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruptFile);
    EXPECT_NE(std::string(e.what()).find("<pad>"), std::string::npos);
  }
}

}  // namespace
}  // namespace df::engine

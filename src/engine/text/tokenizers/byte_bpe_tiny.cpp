// Builds the tiny Qwen2-style tokenizer: deterministic BPE training on built-in words, then the JSON files.
#include "engine/text/tokenizers/byte_bpe_tiny.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "engine/text/tokenizers/byte_bpe_pretokenizer.h"
#include "engine/tokenizer.h"
#include "engine/utf8.h"

namespace df::engine {
namespace {

using nlohmann::json;

constexpr int kMergeCount = 320;

// The training text: common prompt words and the words of the chat template. Every piece is
// learned from its byte-level characters, so unseen text still encodes (byte by byte).
constexpr std::string_view kCorpus =
    "user assistant system a an the of and with in on at by for from to over under painting "
    "photo portrait landscape drawing sketch render art poster cat dog horse bird fox dragon "
    "robot knight wizard woman man girl boy face eyes hair smile castle house city street "
    "forest tree mountain river lake ocean beach field garden flower sky cloud sun moon star "
    "night day sunset rain snow fire water light shadow red orange yellow green blue pink black "
    "white dark bright beautiful detailed sharp focus masterpiece best quality high resolution "
    "realistic cinematic lighting dramatic studio film camera oil watercolor anime style hat "
    "dress sword window door room bridge road car ship coffee book small large, 1.2 (red hat) "
    "it's don't I'm we'll 2024 100%\n\n";

using Symbols = std::vector<std::string>;
using Pair = std::pair<std::string, std::string>;

// Each pre-tokenized corpus piece as byte-level characters, with its count.
std::map<Symbols, int> corpus_pieces() {
  std::map<Symbols, int> pieces;
  for (const std::string& piece : qwen2_pre_tokenize(decode_utf8(kCorpus))) {
    Symbols symbols;
    for (char byte : piece) symbols.push_back(byte_level_alphabet()[static_cast<uint8_t>(byte)]);
    ++pieces[symbols];
  }
  return pieces;
}

// The most frequent adjacent pair (the smallest on ties), or an empty pair when none is left.
Pair most_frequent_pair(const std::map<Symbols, int>& pieces) {
  std::map<Pair, int> counts;
  for (const auto& [symbols, count] : pieces) {
    for (size_t i = 0; i + 1 < symbols.size(); ++i) counts[{symbols[i], symbols[i + 1]}] += count;
  }
  Pair best;
  int best_count = 0;
  for (const auto& [pair, count] : counts) {
    if (count > best_count) best = pair, best_count = count;
  }
  return best;
}

std::map<Symbols, int> apply_merge(const std::map<Symbols, int>& pieces, const Pair& merge) {
  std::map<Symbols, int> merged;
  for (const auto& [symbols, count] : pieces) {
    Symbols out;
    for (size_t i = 0; i < symbols.size(); ++i) {
      if (i + 1 < symbols.size() && symbols[i] == merge.first && symbols[i + 1] == merge.second) {
        out.push_back(merge.first + merge.second);
        ++i;
      } else {
        out.push_back(symbols[i]);
      }
    }
    merged[out] += count;
  }
  return merged;
}

std::vector<Pair> train_merges() {
  auto pieces = corpus_pieces();
  std::vector<Pair> merges;
  while (static_cast<int>(merges.size()) < kMergeCount) {
    const Pair merge = most_frequent_pair(pieces);
    if (merge.first.empty()) break;
    merges.push_back(merge);
    pieces = apply_merge(pieces, merge);
  }
  return merges;
}

struct TinyAddedToken {
  std::string_view content;
  bool special;
};
constexpr TinyAddedToken kAddedTokens[] = {
    {"<|endoftext|>", true}, {"<|im_start|>", true}, {"<|im_end|>", true},
    {"<think>", false},      {"</think>", false},
};

// The parts of Qwen3's chat template a text encoder uses: user turns and the generation prompt,
// with the empty thinking block only when thinking is switched off.
constexpr std::string_view kChatTemplate =
    "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + "
    "'<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}{%- if enable_thinking is defined and enable_thinking is "
    "false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}";

json byte_level_step() {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false},
          {"use_regex", false}};
}

json tokenizer_json() {
  json vocab = json::object();
  for (int byte = 0; byte < 256; ++byte) vocab[byte_level_alphabet()[byte]] = byte;
  json merges = json::array();
  for (const auto& [left, right] : train_merges()) {
    vocab.emplace(left + right, static_cast<int>(vocab.size()));
    merges.push_back({left, right});
  }
  json added = json::array();
  for (const auto& token : kAddedTokens) {
    added.push_back({{"id", static_cast<int>(vocab.size() + added.size())},
                     {"content", token.content},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", token.special}});
  }
  const json split = {{"type", "Split"},
                      {"pattern", {{"Regex", kQwen2SplitPattern}}},
                      {"behavior", "Isolated"},
                      {"invert", false}};
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", {{"type", "NFC"}}},
          {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", {split, byte_level_step()}}}},
          {"post_processor", byte_level_step()},
          {"decoder", byte_level_step()},
          {"model",
           {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
            {"continuing_subword_prefix", ""}, {"end_of_word_suffix", ""}, {"fuse_unk", false},
            {"byte_fallback", false}, {"ignore_merges", false}, {"vocab", vocab},
            {"merges", merges}}}};
}

json tokenizer_config_json() {
  return {{"tokenizer_class", "Qwen2Tokenizer"}, {"bos_token", nullptr},
          {"eos_token", "<|im_end|>"},           {"pad_token", "<|endoftext|>"},
          {"unk_token", nullptr},                {"add_prefix_space", false},
          {"errors", "replace"},                 {"model_max_length", 131072},
          {"chat_template", kChatTemplate}};
}

void write_json(const std::filesystem::path& path, const json& doc) {
  std::ofstream out(path, std::ios::binary);
  out << doc.dump(2) << '\n';
  if (!out) throw Error(ErrorCode::kIo, "cannot write tokenizer file " + path.string());
}

}  // namespace

void write_tiny_qwen_tokenizer(const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) throw Error(ErrorCode::kIo, "cannot create tokenizer folder " + dir + ": " + error.message());
  write_json(std::filesystem::path(dir) / "tokenizer.json", tokenizer_json());
  write_json(std::filesystem::path(dir) / "tokenizer_config.json", tokenizer_config_json());
}

int tiny_qwen_vocab_size() {
  static const int size = [] {
    const json doc = tokenizer_json();
    return static_cast<int>(doc.at("model").at("vocab").size() + doc.at("added_tokens").size());
  }();
  return size;
}

}  // namespace df::engine

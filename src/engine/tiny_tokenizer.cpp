// Builds the tiny CLIP tokenizer: deterministic BPE training on built-in prompt words, then files.
#include "engine/tiny_tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "engine/tokenizer.h"

namespace df::engine {
namespace {

// The vocabulary stays within the 1000 tokens of the tiny CLIP configurations of diffusers' tests.
constexpr int kVocabLimit = 1000;
constexpr std::string_view kStartOfText = "<|startoftext|>";
constexpr std::string_view kEndOfText = "<|endoftext|>";

// Common words of image prompts: the training corpus of the tiny vocabulary. Small enough that
// every word ends up as one token within the vocabulary limit.
constexpr std::string_view kCorpus =
    "a an the of and with in on at by for from to over under painting photo portrait "
    "landscape drawing sketch render art poster squirrel eating burger cat dog horse bird fox "
    "wolf bear lion tiger fish dragon robot knight wizard king queen woman man girl boy child "
    "old young people face eyes hair smile hands castle house city street forest tree "
    "mountain river lake ocean sea beach field garden flower rose grass sky cloud sun moon "
    "star space night day sunset rain snow storm fog fire water ice gold light shadow red "
    "orange yellow green blue pink black white brown dark bright colorful soft warm cold "
    "beautiful cute epic detailed sharp focus masterpiece best quality high resolution "
    "realistic cinematic lighting dramatic studio natural depth film camera oil watercolor "
    "pencil ink anime cartoon fantasy cyberpunk ancient modern vintage surreal style trending "
    "smooth magical happy sad sitting standing walking running flying holding wearing looking "
    "playing reading hat dress armor sword crown window door room tower bridge road car train "
    "ship boat coffee cake bread apple book small large big long ugly blurry bad worst low "
    "text extra";

using Symbols = std::vector<std::string>;
using Pair = std::pair<std::string, std::string>;

struct TinyBpe {
  std::vector<std::string> vocab;  // index = id
  std::vector<Pair> merges;        // in rank order
};

// Each corpus word as byte-level characters, "</w>" on the last one, with its count.
std::map<Symbols, int> corpus_words() {
  const auto& alphabet = byte_level_alphabet();
  std::map<Symbols, int> words;
  size_t start = 0;
  while (start < kCorpus.size()) {
    size_t end = kCorpus.find(' ', start);
    if (end == std::string_view::npos) end = kCorpus.size();
    Symbols symbols;
    for (char c : kCorpus.substr(start, end - start)) {
      symbols.push_back(alphabet[static_cast<unsigned char>(c)]);
    }
    if (!symbols.empty()) {
      symbols.back() += "</w>";
      ++words[symbols];
    }
    start = end + 1;
  }
  return words;
}

// The most frequent adjacent pair (ties: the smallest pair), if any.
std::optional<Pair> most_frequent_pair(const std::map<Symbols, int>& words) {
  std::map<Pair, int> counts;
  for (const auto& [symbols, count] : words) {
    for (size_t i = 0; i + 1 < symbols.size(); ++i) counts[{symbols[i], symbols[i + 1]}] += count;
  }
  std::optional<Pair> best;
  int best_count = 0;
  for (const auto& [pair, count] : counts) {
    if (count > best_count) {
      best = pair;
      best_count = count;
    }
  }
  return best;
}

Symbols apply_merge(const Symbols& symbols, const Pair& merge) {
  Symbols merged;
  for (size_t i = 0; i < symbols.size(); ++i) {
    if (i + 1 < symbols.size() && symbols[i] == merge.first && symbols[i + 1] == merge.second) {
      merged.push_back(merge.first + merge.second);
      ++i;
    } else {
      merged.push_back(symbols[i]);
    }
  }
  return merged;
}

// The code point of a one-character UTF-8 string of at most two bytes (the byte alphabet).
int code_point(const std::string& c) {
  const auto lead = static_cast<unsigned char>(c[0]);
  return c.size() == 1 ? lead : ((lead & 0x1F) << 6) | (static_cast<unsigned char>(c[1]) & 0x3F);
}

TinyBpe train_tiny_bpe() {
  TinyBpe bpe;
  // CLIP orders the byte characters by code point: printable bytes first, then the stand-ins.
  std::vector<std::string> chars = byte_level_alphabet();
  std::sort(chars.begin(), chars.end(), [](const std::string& a, const std::string& b) {
    return code_point(a) < code_point(b);
  });
  for (const auto& c : chars) bpe.vocab.push_back(c);
  for (const auto& c : chars) bpe.vocab.push_back(c + "</w>");
  std::unordered_map<std::string, int> known(bpe.vocab.size());
  for (size_t id = 0; id < bpe.vocab.size(); ++id)
    known.emplace(bpe.vocab[id], static_cast<int>(id));

  auto words = corpus_words();
  const size_t reserved_for_specials = 2;
  while (bpe.vocab.size() + reserved_for_specials < kVocabLimit) {
    const auto merge = most_frequent_pair(words);
    if (!merge) break;
    std::map<Symbols, int> merged_words;
    for (const auto& [symbols, count] : words) merged_words[apply_merge(symbols, *merge)] += count;
    words = std::move(merged_words);
    bpe.merges.push_back(*merge);
    const std::string token = merge->first + merge->second;
    if (known.emplace(token, static_cast<int>(bpe.vocab.size())).second) bpe.vocab.push_back(token);
  }
  bpe.vocab.emplace_back(kStartOfText);
  bpe.vocab.emplace_back(kEndOfText);
  return bpe;
}

const TinyBpe& tiny_bpe() {
  static const TinyBpe bpe = train_tiny_bpe();
  return bpe;
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw Error(ErrorCode::kIo, "cannot write tokenizer file " + path.string());
}

}  // namespace

void write_tiny_clip_tokenizer(const std::string& dir, const std::string& pad_token) {
  const TinyBpe& bpe = tiny_bpe();
  if (std::find(bpe.vocab.begin(), bpe.vocab.end(), pad_token) == bpe.vocab.end()) {
    throw Error(ErrorCode::kInvalidArgument,
                "tiny tokenizer pad token '" + pad_token + "' is not in its vocabulary");
  }
  const std::filesystem::path root(dir);
  std::error_code error;
  std::filesystem::create_directories(root, error);
  if (error)
    throw Error(ErrorCode::kIo, "cannot create tokenizer folder " + dir + ": " + error.message());

  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (size_t id = 0; id < bpe.vocab.size(); ++id) vocab[bpe.vocab[id]] = id;
  write_file(root / "vocab.json", vocab.dump());

  std::string merges = "#version: 0.2\n";
  for (const auto& [left, right] : bpe.merges) merges += left + " " + right + "\n";
  write_file(root / "merges.txt", merges);

  const nlohmann::ordered_json special_tokens = {{"bos_token", kStartOfText},
                                                 {"eos_token", kEndOfText},
                                                 {"unk_token", kEndOfText},
                                                 {"pad_token", pad_token}};
  write_file(root / "special_tokens_map.json", special_tokens.dump(2));

  nlohmann::ordered_json config = {{"tokenizer_class", "CLIPTokenizer"},
                                   {"model_max_length", ClipTokenizer::kMaxLength},
                                   {"do_lower_case", true}};
  config.update(special_tokens);
  write_file(root / "tokenizer_config.json", config.dump(2));
}

int tiny_clip_vocab_size() { return static_cast<int>(tiny_bpe().vocab.size()); }

}  // namespace df::engine

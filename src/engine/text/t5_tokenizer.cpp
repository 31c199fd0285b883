// T5 tokenizer over the sentencepiece library, with special-token splitting and ComfyUI weighting.
#include "engine/text/t5_tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/prompt_weights.h"
#include "engine/text/tokenizers/sentencepiece_model.h"
#include "engine/utf8.h"

namespace df::engine {
namespace {

constexpr int kExtraIds = 100;  // transformers' T5Tokenizer default extra_ids
constexpr std::string_view kEmbeddingPrefix = "embedding:";
constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581, SentencePiece's space

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kCorruptFile, "cannot read tokenizer file " + path);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// The file to read for `path`: the path itself, or spiece.model / tokenizer.json in a folder.
std::string resolve_tokenizer_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw Error(ErrorCode::kModelNotFound, "T5 tokenizer not found: " + path);
  }
  if (!fs::is_directory(path, ec)) return path;
  for (const char* name : {"spiece.model", "tokenizer.json"}) {
    const fs::path candidate = fs::path(path) / name;
    if (fs::is_regular_file(candidate, ec)) return candidate.string();
  }
  throw Error(ErrorCode::kModelNotFound,
              "T5 tokenizer folder " + path + " has neither spiece.model nor tokenizer.json");
}

bool is_json_file(const std::string& path, const std::string& bytes) {
  if (path.ends_with(".json")) return true;
  const auto first = bytes.find_first_not_of(" \t\r\n");
  return first != std::string::npos && bytes[first] == '{';
}

// Bytes of the UTF-8 character that starts with `lead`.
size_t utf8_length(unsigned char lead) {
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

// Unigram segmentation of one word ("▁" and what follows it) as Hugging Face tokenizers computes
// it: the best-scoring path with scores summed in double precision per word (the sentencepiece
// library sums in float over the whole text, which breaks near-ties such as long runs of "!"
// differently), a piece reaching a position first keeping it on equal scores, characters no piece
// covers scored as unknown (lowest score - 10), and runs of unknowns fused into one.
class UnigramSegmenter {
 public:
  void add_piece(const std::string& piece, int id, double score) {
    pieces_.emplace(piece, std::make_pair(id, score));
    longest_ = std::max(longest_, piece.size());
    lowest_score_ = std::min(lowest_score_, score);
  }
  void set_unknown_id(int id) { unk_id_ = id; }

  // Appends the ids of `word` ("▁" and what follows it, already normalized).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const {
    std::vector<Node> best(word.size() + 1);
    best[0].start = 0;
    for (size_t start = 0; start < word.size(); start += utf8_length(word[start])) {
      extend_from(word, start, best);
    }
    std::vector<int32_t> path;
    for (size_t end = word.size(); end > 0; end = static_cast<size_t>(best[end].start)) {
      path.push_back(best[end].id);
    }
    const size_t word_start = out.size();
    for (auto id = path.rbegin(); id != path.rend(); ++id) {
      const bool fuses = *id == unk_id_ && out.size() > word_start && out.back() == unk_id_;
      if (!fuses) out.push_back(*id);
    }
  }

 private:
  struct Node {
    double score = 0.0;
    int64_t start = -1;  // -1: not reached yet
    int id = 0;
  };

  static void offer(Node& node, size_t start, int id, double score) {
    if (node.start < 0 || score > node.score) node = {score, static_cast<int64_t>(start), id};
  }

  void extend_from(std::string_view word, size_t start, std::vector<Node>& best) const {
    const double base = best[start].score;
    const size_t first_char = std::min(utf8_length(word[start]), word.size() - start);
    bool covers_first_char = false;
    for (size_t length = 1; length <= std::min(longest_, word.size() - start); ++length) {
      const auto it = pieces_.find(std::string(word.substr(start, length)));
      if (it == pieces_.end()) continue;
      offer(best[start + length], start, it->second.first, it->second.second + base);
      covers_first_char = covers_first_char || length == first_char;
    }
    if (!covers_first_char) offer(best[start + first_char], start, unk_id_, lowest_score_ - 10.0 + base);
  }

  std::unordered_map<std::string, std::pair<int, double>> pieces_;
  size_t longest_ = 0;
  double lowest_score_ = 0.0;
  int unk_id_ = 0;
};

}  // namespace

struct T5Tokenizer::Model {
  sentencepiece::SentencePieceProcessor processor;  // normalizes
  UnigramSegmenter segmenter;                       // splits the normalized words into pieces
  // Special tokens cut out of the raw text, longest first so the longest match wins.
  std::vector<std::pair<std::string, int>> special_tokens;
  int pad_id = 0;
  int eos_id = 1;
  int unk_id = 2;
  size_t vocab_size = 0;
  int trailing_space_id = -1;  // the "▁" piece's id when text ending in whitespace ends with it

  void load_proto(const std::string& bytes, const std::string& path) {
    const auto status = processor.LoadFromSerializedProto(bytes);
    if (!status.ok()) {
      throw Error(ErrorCode::kCorruptFile,
                  "T5 tokenizer file " + path + " is not a SentencePiece model: " + status.ToString());
    }
    vocab_size = static_cast<size_t>(processor.GetPieceSize());
    unk_id = processor.unk_id();
    segmenter.set_unknown_id(unk_id);
    for (int id = 0; id < processor.GetPieceSize(); ++id) {
      const std::string piece = processor.IdToPiece(id);
      if (!processor.IsControl(id) && !processor.IsUnknown(id)) {
        if (!processor.IsUnused(id)) segmenter.add_piece(piece, id, processor.GetScore(id));
        continue;
      }
      special_tokens.emplace_back(piece, id);
      if (piece == "</s>") eos_id = id;
      if (piece == "<pad>") pad_id = id;
    }
  }

  void add_extra_ids() {
    const int first = static_cast<int>(vocab_size);
    for (int n = 0; n < kExtraIds; ++n) {
      special_tokens.emplace_back("<extra_id_" + std::to_string(n) + ">", first + kExtraIds - 1 - n);
    }
    vocab_size += kExtraIds;
  }

  void sort_special_tokens() {
    std::stable_sort(special_tokens.begin(), special_tokens.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  }

  // The special token starting at text[pos], if any.
  const std::pair<std::string, int>* special_at(std::string_view text, size_t pos) const {
    for (const auto& token : special_tokens) {
      if (text.substr(pos).starts_with(token.first)) return &token;
    }
    return nullptr;
  }

  // The text as the model's normalizer leaves it: NFKC-like mapping, whitespace trimmed and
  // collapsed, "▁" for each space and in front (the pieces sentencepiece cuts it into, joined).
  std::string normalize(std::string_view text) const {
    std::vector<std::string> pieces;
    const auto status = processor.Encode(text, &pieces);
    if (!status.ok()) throw Error(ErrorCode::kInternal, "T5 tokenizer: " + status.ToString());
    std::string normalized;
    for (const std::string& piece : pieces) normalized += piece;
    return normalized;
  }

  // Whether the text, normalized, ends in whitespace (characters the normalizer drops skipped).
  bool ends_with_space(std::string_view text) const {
    const std::u32string characters = decode_utf8(text);
    const std::string space_between = std::string(kSpaceMark) + "x" + std::string(kSpaceMark) + "y";
    const std::string nothing_between = std::string(kSpaceMark) + "xy";
    for (auto c = characters.rbegin(); c != characters.rend(); ++c) {
      std::string probe = "x";
      append_utf8(probe, *c);
      const std::string normalized = normalize(probe + "y");
      if (normalized == space_between) return true;
      if (normalized != nothing_between) return false;
    }
    return false;
  }

  void encode_plain(std::string_view text, std::vector<int32_t>& out) const {
    if (text.empty()) return;
    encode_words(text, out);
    if (trailing_space_id >= 0 && ends_with_space(text)) out.push_back(trailing_space_id);
  }

  void encode_words(std::string_view text, std::vector<int32_t>& out) const {
    const std::string normalized = normalize(text);
    size_t word_start = 0;
    while (word_start < normalized.size()) {
      size_t word_end = normalized.find(kSpaceMark, word_start + kSpaceMark.size());
      if (word_end == std::string::npos) word_end = normalized.size();
      segmenter.encode_word(std::string_view(normalized).substr(word_start, word_end - word_start), out);
      word_start = word_end;
    }
  }
};

T5Tokenizer T5Tokenizer::from_file(const std::string& path, TrailingSpace trailing_space) {
  const std::string file = resolve_tokenizer_file(path);
  const std::string bytes = read_file(file);
  auto model = std::make_shared<Model>();
  if (is_json_file(file, bytes)) {
    const auto json = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) {
      throw Error(ErrorCode::kCorruptFile, "T5 tokenizer file " + file + " is not valid JSON");
    }
    const auto unigram = tokenizers::unigram_model_from_tokenizer_json(json, file);
    model->load_proto(tokenizers::serialize_sentencepiece_model(unigram), file);
  } else {
    model->load_proto(bytes, file);
    model->add_extra_ids();
  }
  model->sort_special_tokens();
  if (trailing_space == TrailingSpace::kPiece) {
    model->trailing_space_id = model->processor.PieceToId(kSpaceMark);
    if (model->trailing_space_id == model->unk_id) {
      throw Error(ErrorCode::kCorruptFile, "T5 tokenizer file " + file + " has no \"\u2581\" piece");
    }
  }
  return T5Tokenizer(std::move(model));
}

std::vector<int32_t> T5Tokenizer::encode(const std::string& text) const {
  decode_utf8(text);  // validates
  std::vector<int32_t> ids;
  size_t plain_start = 0;
  for (size_t pos = 0; pos < text.size();) {
    const auto* special = text[pos] == '<' ? model_->special_at(text, pos) : nullptr;
    if (special == nullptr) {
      ++pos;
      continue;
    }
    model_->encode_plain(std::string_view(text).substr(plain_start, pos - plain_start), ids);
    ids.push_back(special->second);
    pos += special->first.size();
    plain_start = pos;
  }
  model_->encode_plain(std::string_view(text).substr(plain_start), ids);
  return ids;
}

int T5Tokenizer::pad_id() const { return model_->pad_id; }
int T5Tokenizer::eos_id() const { return model_->eos_id; }
int T5Tokenizer::unk_id() const { return model_->unk_id; }
size_t T5Tokenizer::vocab_size() const { return model_->vocab_size; }

bool T5WeightedTokens::has_non_unit_weights() const {
  return std::any_of(weights.begin(), weights.end(), [](float w) { return w != 1.0f; });
}

namespace {

// ComfyUI cuts a segment before each "embedding:" that follows a space or newline (consuming that
// character); returns the non-empty pieces.
std::vector<std::string> split_before_embeddings(const std::string& segment) {
  static const std::regex separator("[ \\n]embedding:");
  std::vector<std::string> pieces;
  size_t start = 0;
  for (auto it = std::sregex_iterator(segment.begin(), segment.end(), separator);
       it != std::sregex_iterator(); ++it) {
    pieces.push_back(segment.substr(start, it->position() - start));
    start = it->position() + 1;  // the piece keeps "embedding:"
  }
  pieces.push_back(segment.substr(start));
  std::erase(pieces, std::string());
  return pieces;
}

// The text of a piece that ComfyUI tokenizes: for "embedding:NAME rest", the words after NAME
// joined by spaces (T5 has no embeddings, so NAME is reported missing and dropped); when NAME
// has commas at its ends, as many of its last characters as there were commas stay in front.
std::string text_to_tokenize(const std::string& piece) {
  if (!piece.starts_with(kEmbeddingPrefix)) return piece;
  std::istringstream words(piece.substr(kEmbeddingPrefix.size()));
  std::string name;
  words >> name;
  std::cerr << "warning, embedding:" << name << " does not exist, ignoring\n";
  std::string rest;
  for (std::string word; words >> word;) rest += (rest.empty() ? "" : " ") + word;
  const size_t first = name.find_first_not_of(',');
  const size_t kept = first == std::string::npos ? 0 : name.find_last_not_of(',') + 1 - first;
  const size_t commas = name.size() - kept;
  return commas == 0 ? rest : name.substr(name.size() - commas) + " " + rest;
}

}  // namespace

T5WeightedTokens t5_weighted_tokens(const T5Tokenizer& tokenizer, const std::string& prompt,
                                    int min_length) {
  T5WeightedTokens out;
  for (const auto& [segment, weight] : parse_prompt_weights(prompt)) {
    for (const std::string& piece : split_before_embeddings(segment)) {
      for (int32_t id : tokenizer.encode(text_to_tokenize(piece))) {
        out.ids.push_back(id);
        out.weights.push_back(weight);
      }
    }
  }
  out.ids.push_back(tokenizer.eos_id());
  out.weights.push_back(1.0f);
  while (static_cast<int>(out.ids.size()) < min_length) {
    out.ids.push_back(tokenizer.pad_id());
    out.weights.push_back(1.0f);
  }
  return out;
}

}  // namespace df::engine

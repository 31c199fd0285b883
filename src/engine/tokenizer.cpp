// ClipTokenizer: special-token splitting, text normalisation, pre-tokenisation and byte-level BPE.
#include "engine/tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <queue>
#include <sstream>
#include <string_view>
#include <unordered_map>

#include "core/error.h"
#include "engine/utf8.h"

namespace df::engine {

namespace {

constexpr size_t kPieceCacheLimit = 1 << 16;

struct Merge {
  int rank;
  int result_id;
};

uint64_t pair_key(int left, int right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

}  // namespace

struct ClipTokenizer::Model {
  std::unordered_map<std::string, int> vocab;
  std::unordered_map<uint64_t, Merge> merges;  // key: (left id << 32) | right id
  // Added tokens, longest first: matched in the raw text, or in the normalised text.
  std::vector<std::pair<std::string, int>> raw_added_tokens;
  std::vector<std::pair<std::u32string, int>> normalized_added_tokens;
  int bos_id = 0, eos_id = 0, pad_id = 0, unk_id = 0;
  std::vector<int> byte_ids;        // id of the character standing for each byte
  std::vector<int> final_byte_ids;  // the same with "</w>" (a piece's last byte)

  std::mutex cache_mutex;
  std::unordered_map<std::string, std::vector<int>> piece_cache;

  std::vector<int> encode_piece(const std::string& piece);
  std::vector<int> byte_pair_encode(std::string_view piece) const;
};

namespace {

namespace fs = std::filesystem;

// A token that is never split: cut out of the text before BPE.
struct AddedToken {
  std::string content;
  int id;
  bool normalized;  // matched in the normalised text rather than the raw text
};

struct MergeRule {
  std::string left, right;
  int position;  // line of merges.txt or index in tokenizer.json, for error messages
};

// What a tokenizer folder's files say, in either layout.
struct BpeFiles {
  std::unordered_map<std::string, int> vocab;
  std::vector<MergeRule> merges;
  std::vector<AddedToken> added_tokens;
  std::string merges_file;     // for error messages
  std::string merge_position;  // what MergeRule::position counts: "line" or "merge"
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(ErrorCode::kCorruptFile,
                "tokenizer file " + path.string() + " is missing or unreadable");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

nlohmann::json read_json(const fs::path& path) {
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kCorruptFile,
                "tokenizer file " + path.string() + " is not valid JSON: " + e.what());
  }
}

bool is_valid_id(const nlohmann::json& id) {
  return id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() <= INT32_MAX;
}

// A {"token": id} object (vocab.json, tokenizer.json's model.vocab).
std::unordered_map<std::string, int> read_vocab(const nlohmann::json& json,
                                                const std::string& where) {
  if (!json.is_object() || json.empty()) {
    throw Error(ErrorCode::kCorruptFile, where + " is not a JSON object of token ids");
  }
  std::unordered_map<std::string, int> vocab;
  vocab.reserve(json.size());
  for (const auto& [token, id] : json.items()) {
    if (!is_valid_id(id)) {
      throw Error(ErrorCode::kCorruptFile,
                  where + ": token '" + token + "' has no valid id (" + id.dump() + ")");
    }
    vocab.emplace(token, id.get<int>());
  }
  return vocab;
}

// "left right" with exactly one space between two non-empty tokens.
std::optional<std::pair<std::string, std::string>> split_merge(std::string_view text) {
  const size_t space = text.find(' ');
  if (space == std::string::npos || space == 0 || space + 1 == text.size() ||
      text.find(' ', space + 1) != std::string::npos) {
    return std::nullopt;
  }
  return std::pair{std::string(text.substr(0, space)), std::string(text.substr(space + 1))};
}

std::vector<MergeRule> read_merges_txt(const fs::path& path) {
  std::istringstream lines(read_file(path));
  std::vector<MergeRule> merges;
  std::string line;
  int line_number = 0;
  while (std::getline(lines, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.starts_with("#version")) continue;
    auto pair = split_merge(line);
    if (!pair) {
      throw Error(ErrorCode::kCorruptFile, path.string() + " line " + std::to_string(line_number) +
                                               " is not a merge of two tokens: '" + line + "'");
    }
    merges.push_back({std::move(pair->first), std::move(pair->second), line_number});
  }
  return merges;
}

// model.merges of tokenizer.json: "a b" strings (older files) or ["a", "b"] pairs.
std::vector<MergeRule> read_json_merges(const nlohmann::json& json, const std::string& where) {
  if (!json.is_array()) {
    throw Error(ErrorCode::kCorruptFile, where + ": model.merges is not a list");
  }
  std::vector<MergeRule> merges;
  merges.reserve(json.size());
  for (size_t i = 0; i < json.size(); ++i) {
    const auto& entry = json[i];
    std::optional<std::pair<std::string, std::string>> pair;
    if (entry.is_string()) {
      pair = split_merge(entry.get<std::string>());
    } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() &&
               entry[1].is_string() && !entry[0].get<std::string>().empty() &&
               !entry[1].get<std::string>().empty()) {
      pair = std::pair{entry[0].get<std::string>(), entry[1].get<std::string>()};
    }
    if (!pair) {
      throw Error(ErrorCode::kCorruptFile, where + " merge " + std::to_string(i) +
                                               " is not a merge of two tokens: " + entry.dump());
    }
    merges.push_back({std::move(pair->first), std::move(pair->second), static_cast<int>(i)});
  }
  return merges;
}

std::vector<AddedToken> read_added_tokens(const nlohmann::json& doc, const std::string& where) {
  std::vector<AddedToken> tokens;
  if (!doc.contains("added_tokens") || doc.at("added_tokens").is_null()) return tokens;
  const auto& list = doc.at("added_tokens");
  if (!list.is_array()) {
    throw Error(ErrorCode::kCorruptFile, where + ": added_tokens is not a list");
  }
  for (const auto& entry : list) {
    if (!entry.is_object() || !entry.contains("content") || !entry.at("content").is_string() ||
        !entry.contains("id") || !is_valid_id(entry.at("id"))) {
      throw Error(ErrorCode::kCorruptFile,
                  where + ": added token " + entry.dump() + " has no content or no valid id");
    }
    // The default of "normalized" is the opposite of "special", as in the tokenizers library.
    const bool special = entry.contains("special") && entry.at("special").is_boolean() &&
                         entry.at("special").get<bool>();
    const bool normalized = entry.contains("normalized") && entry.at("normalized").is_boolean()
                                ? entry.at("normalized").get<bool>()
                                : !special;
    tokens.push_back({entry.at("content").get<std::string>(), entry.at("id").get<int>(),
                      normalized});
  }
  return tokens;
}

BpeFiles read_tokenizer_json(const fs::path& path) {
  const nlohmann::json doc = read_json(path);
  const std::string where = path.string();
  if (!doc.is_object() || !doc.contains("model") || !doc.at("model").is_object()) {
    throw Error(ErrorCode::kCorruptFile, where + " has no tokenizer model");
  }
  const auto& model = doc.at("model");
  const auto type = model.find("type");
  if (type != model.end() && !(type->is_string() && type->get<std::string>() == "BPE")) {
    throw Error(ErrorCode::kUnsupported, where + " holds a " + type->dump() +
                                             " tokenizer; only CLIP's byte-level BPE is supported");
  }
  const auto suffix = model.find("end_of_word_suffix");
  if (suffix == model.end() || !suffix->is_string() || suffix->get<std::string>() != "</w>") {
    throw Error(ErrorCode::kUnsupported,
                where + " is not a CLIP tokenizer: its words do not end in \"</w>\"");
  }
  if (!model.contains("vocab") || !model.contains("merges")) {
    throw Error(ErrorCode::kCorruptFile, where + " has no model.vocab or no model.merges");
  }
  BpeFiles files;
  files.vocab = read_vocab(model.at("vocab"), where + " model.vocab");
  files.merges = read_json_merges(model.at("merges"), where);
  files.added_tokens = read_added_tokens(doc, where);
  files.merges_file = where;
  files.merge_position = "merge";
  return files;
}

// vocab.json + merges.txt when both exist, else tokenizer.json (transformers 5 saves only that).
BpeFiles read_bpe_files(const fs::path& dir) {
  const bool split_files = fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt");
  if (!split_files && fs::exists(dir / "tokenizer.json")) {
    return read_tokenizer_json(dir / "tokenizer.json");
  }
  if (!fs::exists(dir / "vocab.json") && !fs::exists(dir / "merges.txt")) {
    throw Error(ErrorCode::kCorruptFile,
                "tokenizer folder " + dir.string() +
                    " has no tokenizer files (vocab.json and merges.txt, or tokenizer.json)");
  }
  BpeFiles files;
  files.vocab = read_vocab(read_json(dir / "vocab.json"), (dir / "vocab.json").string());
  files.merges = read_merges_txt(dir / "merges.txt");
  files.merges_file = (dir / "merges.txt").string();
  files.merge_position = "line";
  return files;
}

std::unordered_map<uint64_t, Merge> merge_table(const BpeFiles& files) {
  std::unordered_map<uint64_t, Merge> merges;
  for (const MergeRule& rule : files.merges) {
    auto id_of = [&](const std::string& token) {
      auto it = files.vocab.find(token);
      if (it == files.vocab.end()) {
        throw Error(ErrorCode::kCorruptFile,
                    files.merges_file + " " + files.merge_position + " " +
                        std::to_string(rule.position) + ": token '" + token +
                        "' is not in the vocabulary");
      }
      return it->second;
    };
    const int left = id_of(rule.left), right = id_of(rule.right);
    const int result = id_of(rule.left + rule.right);
    const int rank = static_cast<int>(merges.size());
    merges.try_emplace(pair_key(left, right), Merge{rank, result});
  }
  if (merges.empty()) throw Error(ErrorCode::kCorruptFile, files.merges_file + " has no merges");
  return merges;
}

// A special token as written in special_tokens_map.json / tokenizer_config.json: a string or an
// AddedToken object {"content": ...}.
std::optional<std::string> special_token_text(const nlohmann::json& config,
                                              const std::string& key) {
  if (!config.is_object() || !config.contains(key)) return std::nullopt;
  const auto& value = config.at(key);
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value.at("content").is_string()) {
    return value.at("content").get<std::string>();
  }
  return std::nullopt;
}

// The configuration files that name special tokens, in precedence order (missing ones skipped).
std::vector<nlohmann::json> special_token_configs(const fs::path& dir) {
  std::vector<nlohmann::json> configs;
  for (const char* name : {"special_tokens_map.json", "tokenizer_config.json"}) {
    if (fs::exists(dir / name)) configs.push_back(read_json(dir / name));
  }
  return configs;
}

std::string special_token(const std::vector<nlohmann::json>& configs, const std::string& key,
                          const std::string& fallback) {
  for (const auto& config : configs) {
    if (auto text = special_token_text(config, key)) return *text;
  }
  return fallback;
}

using CodePoints = std::u32string_view;

bool is_letter(char32_t cp) {
  const auto category = utf8proc_category(cp);
  return category >= UTF8PROC_CATEGORY_LU && category <= UTF8PROC_CATEGORY_LO;
}

bool is_number(char32_t cp) {
  const auto category = utf8proc_category(cp);
  return category >= UTF8PROC_CATEGORY_ND && category <= UTF8PROC_CATEGORY_NO;
}

// Unicode whitespace as the reference tokenizer's regex `\s` sees it.
bool is_space(char32_t cp) {
  if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x85) return true;
  const auto category = utf8proc_category(cp);
  return category == UTF8PROC_CATEGORY_ZS || category == UTF8PROC_CATEGORY_ZL ||
         category == UTF8PROC_CATEGORY_ZP;
}

std::u32string nfc(std::string_view text) { return decode_utf8(nfc_utf8(text)); }

// NFC, every whitespace run to one space, then full lowercase (U+0130 is the one character whose
// lowercase is two code points).
std::u32string normalize(std::string_view text) {
  std::u32string out;
  bool in_space = false;
  for (char32_t cp : nfc(text)) {
    if (is_space(cp)) {
      if (!in_space) out.push_back(' ');
      in_space = true;
      continue;
    }
    in_space = false;
    if (cp == 0x130) {
      out.push_back('i');
      out.push_back(0x307);
    } else {
      out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
    }
  }
  return out;
}

// Cuts `text` at the added tokens (longest first at the leftmost position where any matches):
// calls on_text(run) for each run between them, possibly empty, and on_token(id) for each token.
template <typename Text, typename Token, typename OnText, typename OnToken>
void split_at_added_tokens(Text text, const std::vector<std::pair<Token, int>>& tokens,
                           OnText&& on_text, OnToken&& on_token) {
  size_t start = 0, i = 0;
  while (i < text.size()) {
    const std::pair<Token, int>* match = nullptr;
    for (const auto& token : tokens) {
      if (text.size() - i >= token.first.size() &&
          std::equal(token.first.begin(), token.first.end(), text.begin() + i)) {
        match = &token;
        break;
      }
    }
    if (match == nullptr) {
      ++i;
      continue;
    }
    on_text(Text(text.data() + start, i - start));
    on_token(match->second);
    i += match->first.size();
    start = i;
  }
  on_text(Text(text.data() + start, text.size() - start));
}

bool has_ascii_at(CodePoints text, size_t i, std::string_view ascii) {
  if (i > text.size() || text.size() - i < ascii.size()) return false;
  for (size_t k = 0; k < ascii.size(); ++k) {
    if (text[i + k] != static_cast<char32_t>(ascii[k])) return false;
  }
  return true;
}

// "startoftext" or "endoftext" if "<|startoftext|>" or "<|endoftext|>" is spelled out at `i`.
std::optional<std::string_view> special_spelling_at(CodePoints text, size_t i) {
  for (std::string_view name : {"startoftext", "endoftext"}) {
    if (has_ascii_at(text, i, "<|") && has_ascii_at(text, i + 2, name) &&
        has_ascii_at(text, i + 2 + name.size(), "|>")) {
      return name;
    }
  }
  return std::nullopt;
}

// Length of a contraction ('s 't 're 've 'm 'll 'd) starting at `i`, or 0.
size_t contraction_length(CodePoints text, size_t i) {
  if (text[i] != '\'' || i + 1 >= text.size()) return 0;
  const auto next = text[i + 1];
  if (next == 's' || next == 't' || next == 'm' || next == 'd') return 2;
  if (i + 2 >= text.size()) return 0;
  const auto after = text[i + 2];
  if ((next == 'r' && after == 'e') || (next == 'v' && after == 'e') ||
      (next == 'l' && after == 'l')) {
    return 3;
  }
  return 0;
}

// Splits normalised text into contractions, letter runs, single digits and runs of other
// non-space characters; spaces separate pieces and are dropped. A special token's spelling that
// survived as text (e.g. lowercased from "<|ENDOFTEXT|>") is its own group, which the byte-level
// step then splits as "<|", "endoftext", "|>": it never joins neighbouring symbols.
std::vector<std::string> pre_tokenize(CodePoints text) {
  std::vector<std::string> pieces;
  size_t i = 0;
  while (i < text.size()) {
    if (is_space(text[i])) {
      ++i;
      continue;
    }
    if (const auto name = special_spelling_at(text, i)) {
      pieces.insert(pieces.end(), {"<|", std::string(*name), "|>"});
      i += name->size() + 4;
      continue;
    }
    size_t end = i + contraction_length(text, i);
    if (end == i) {
      end = i + 1;
      if (is_letter(text[i])) {
        while (end < text.size() && is_letter(text[end])) ++end;
      } else if (!is_number(text[i])) {
        while (end < text.size() && !is_space(text[end]) && !is_letter(text[end]) &&
               !is_number(text[end])) {
          ++end;
        }
      }
    }
    pieces.push_back(encode_utf8(text.substr(i, end - i)));
    i = end;
  }
  return pieces;
}

}  // namespace

const std::vector<std::string>& byte_level_alphabet() {
  static const std::vector<std::string> alphabet = [] {
    auto stands_for_itself = [](int byte) {
      return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE);
    };
    std::vector<std::string> chars(256);
    int next_extra = 256;
    for (int byte = 0; byte < 256; ++byte) {
      append_utf8(chars[byte], stands_for_itself(byte) ? byte : next_extra++);
    }
    return chars;
  }();
  return alphabet;
}

std::vector<int> ClipTokenizer::Model::byte_pair_encode(std::string_view piece) const {
  const int n = static_cast<int>(piece.size());
  std::vector<int> ids(n), next(n), prev(n);
  std::vector<bool> alive(n, true);
  for (int i = 0; i < n; ++i) {
    const auto byte = static_cast<uint8_t>(piece[i]);
    const int id = i + 1 == n ? final_byte_ids[byte] : byte_ids[byte];
    ids[i] = id < 0 ? unk_id : id;
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  // Lowest rank first, then leftmost: the order in which BPE applies merges.
  struct Candidate {
    int rank, left, right, left_id, right_id, result_id;
    bool operator>(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : left > other.left;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto consider = [&](int left) {
    if (left < 0 || next[left] < 0) return;
    const int right = next[left];
    auto it = merges.find(pair_key(ids[left], ids[right]));
    if (it != merges.end()) {
      queue.push({it->second.rank, left, right, ids[left], ids[right], it->second.result_id});
    }
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    if (!alive[c.left] || next[c.left] != c.right || ids[c.left] != c.left_id ||
        ids[c.right] != c.right_id) {
      continue;  // stale: one side was merged since
    }
    ids[c.left] = c.result_id;
    alive[c.right] = false;
    next[c.left] = next[c.right];
    if (next[c.right] >= 0) prev[next[c.right]] = c.left;
    consider(prev[c.left]);
    consider(c.left);
  }
  std::vector<int> out;
  for (int i = 0; i >= 0 && i < n; i = next[i]) out.push_back(ids[i]);
  return out;
}

std::vector<int> ClipTokenizer::Model::encode_piece(const std::string& piece) {
  {
    std::lock_guard lock(cache_mutex);
    if (auto it = piece_cache.find(piece); it != piece_cache.end()) return it->second;
  }
  std::vector<int> ids = byte_pair_encode(piece);
  std::lock_guard lock(cache_mutex);
  if (piece_cache.size() >= kPieceCacheLimit) piece_cache.clear();
  piece_cache.emplace(piece, ids);
  return ids;
}

ClipTokenizer ClipTokenizer::load(const std::string& dir) { return load(dir, ""); }

ClipTokenizer ClipTokenizer::load(const std::string& dir, const std::string& pad_token) {
  const fs::path root(dir);
  BpeFiles files = read_bpe_files(root);
  auto model = std::make_shared<Model>();
  model->merges = merge_table(files);
  model->vocab = std::move(files.vocab);
  for (const AddedToken& token : files.added_tokens) model->vocab.emplace(token.content, token.id);

  const auto configs = special_token_configs(root);
  auto id_of = [&](const std::string& what, const std::string& token) {
    auto it = model->vocab.find(token);
    if (it == model->vocab.end()) {
      throw Error(ErrorCode::kCorruptFile, "tokenizer " + dir + ": " + what + " '" + token +
                                               "' is not in the vocabulary");
    }
    return it->second;
  };
  std::vector<AddedToken> added = std::move(files.added_tokens);
  auto special = [&](const std::string& key, const std::string& fallback) {
    const std::string text = special_token(configs, key, fallback);
    const int id = id_of(key, text);
    const bool known = std::any_of(added.begin(), added.end(),
                                   [&](const AddedToken& token) { return token.content == text; });
    if (!known) added.push_back({text, id, false});
    return id;
  };
  model->bos_id = special("bos_token", "<|startoftext|>");
  model->eos_id = special("eos_token", "<|endoftext|>");
  model->unk_id = special("unk_token", "<|endoftext|>");
  model->pad_id = special("pad_token", "<|endoftext|>");
  if (!pad_token.empty()) model->pad_id = id_of("padding token", pad_token);

  for (const AddedToken& token : added) {
    if (token.content.empty()) continue;
    if (token.normalized) {
      model->normalized_added_tokens.emplace_back(normalize(token.content), token.id);
    } else {
      model->raw_added_tokens.emplace_back(token.content, token.id);
    }
  }
  auto longest_first = [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); };
  std::stable_sort(model->raw_added_tokens.begin(), model->raw_added_tokens.end(), longest_first);
  std::stable_sort(model->normalized_added_tokens.begin(), model->normalized_added_tokens.end(),
                   longest_first);

  const auto& alphabet = byte_level_alphabet();
  model->byte_ids.resize(256, -1);
  model->final_byte_ids.resize(256, -1);
  for (int byte = 0; byte < 256; ++byte) {
    if (auto id = model->vocab.find(alphabet[byte]); id != model->vocab.end()) {
      model->byte_ids[byte] = id->second;
    }
    if (auto id = model->vocab.find(alphabet[byte] + "</w>"); id != model->vocab.end()) {
      model->final_byte_ids[byte] = id->second;
    }
  }
  return ClipTokenizer(std::move(model));
}

std::vector<int> ClipTokenizer::encode_text(const std::string& text) const {
  decode_utf8(text);  // rejects invalid UTF-8 before anything is cut
  std::vector<int> ids;
  auto add_token = [&](int id) { ids.push_back(id); };
  auto encode_normalized = [&](CodePoints normalized) {
    for (const std::string& piece : pre_tokenize(normalized)) {
      const auto piece_ids = model_->encode_piece(piece);
      ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
    }
  };
  auto encode_raw = [&](std::string_view raw) {
    if (raw.empty()) return;
    const std::u32string normalized = normalize(raw);
    split_at_added_tokens(CodePoints(normalized), model_->normalized_added_tokens,
                          encode_normalized, add_token);
  };
  split_at_added_tokens(std::string_view(text), model_->raw_added_tokens, encode_raw, add_token);
  return ids;
}

std::vector<int> ClipTokenizer::encode(const std::string& text) const {
  std::vector<int> ids = encode_text(text);
  constexpr size_t kMaxTokens = kMaxLength - 2;
  if (ids.size() > kMaxTokens) ids.resize(kMaxTokens);
  std::vector<int> sequence;
  sequence.reserve(kMaxLength);
  sequence.push_back(model_->bos_id);
  sequence.insert(sequence.end(), ids.begin(), ids.end());
  sequence.push_back(model_->eos_id);
  sequence.resize(kMaxLength, model_->pad_id);
  return sequence;
}

int ClipTokenizer::bos_id() const { return model_->bos_id; }
int ClipTokenizer::eos_id() const { return model_->eos_id; }
int ClipTokenizer::pad_id() const { return model_->pad_id; }

std::optional<int> ClipTokenizer::token_id(const std::string& token) const {
  auto it = model_->vocab.find(token);
  if (it == model_->vocab.end()) return std::nullopt;
  return it->second;
}

}  // namespace df::engine

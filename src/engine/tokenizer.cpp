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
  std::unordered_map<uint64_t, Merge> merges;               // key: (left id << 32) | right id
  std::vector<std::pair<std::string, int>> special_tokens;  // matched in raw text, longest first
  int bos_id = 0, eos_id = 0, pad_id = 0, unk_id = 0;
  std::vector<int> byte_ids;        // id of the character standing for each byte
  std::vector<int> final_byte_ids;  // the same with "</w>" (a piece's last byte)

  std::mutex cache_mutex;
  std::unordered_map<std::string, std::vector<int>> piece_cache;

  std::vector<int> encode_piece(const std::string& piece);
  std::vector<int> byte_pair_encode(std::string_view piece) const;
};

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(ErrorCode::kCorruptFile,
                "tokenizer file " + path.string() + " is missing or unreadable");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

nlohmann::json read_json(const std::filesystem::path& path) {
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kCorruptFile,
                "tokenizer file " + path.string() + " is not valid JSON: " + e.what());
  }
}

std::unordered_map<std::string, int> read_vocab(const std::filesystem::path& path) {
  const nlohmann::json json = read_json(path);
  if (!json.is_object() || json.empty()) {
    throw Error(ErrorCode::kCorruptFile, path.string() + " is not a JSON object of token ids");
  }
  std::unordered_map<std::string, int> vocab;
  vocab.reserve(json.size());
  for (const auto& [token, id] : json.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      throw Error(ErrorCode::kCorruptFile,
                  path.string() + ": token '" + token + "' has no valid id (" + id.dump() + ")");
    }
    vocab.emplace(token, id.get<int>());
  }
  return vocab;
}

std::unordered_map<uint64_t, Merge> read_merges(const std::filesystem::path& path,
                                                const std::unordered_map<std::string, int>& vocab) {
  const std::string text = read_file(path);
  std::unordered_map<uint64_t, Merge> merges;
  std::istringstream lines(text);
  std::string line;
  int line_number = 0;
  auto id_of = [&](const std::string& token) {
    auto it = vocab.find(token);
    if (it == vocab.end()) {
      throw Error(ErrorCode::kCorruptFile, path.string() + " line " + std::to_string(line_number) +
                                               ": token '" + token + "' is not in vocab.json");
    }
    return it->second;
  };
  while (std::getline(lines, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.starts_with("#version")) continue;
    const size_t space = line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string::npos) {
      throw Error(ErrorCode::kCorruptFile, path.string() + " line " + std::to_string(line_number) +
                                               " is not a merge of two tokens: '" + line + "'");
    }
    const std::string left = line.substr(0, space), right = line.substr(space + 1);
    const int left_id = id_of(left), right_id = id_of(right), result_id = id_of(left + right);
    const int rank = static_cast<int>(merges.size());
    merges.try_emplace(pair_key(left_id, right_id), Merge{rank, result_id});
  }
  if (merges.empty()) throw Error(ErrorCode::kCorruptFile, path.string() + " has no merges");
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
std::vector<nlohmann::json> special_token_configs(const std::filesystem::path& dir) {
  std::vector<nlohmann::json> configs;
  for (const char* name : {"special_tokens_map.json", "tokenizer_config.json"}) {
    if (std::filesystem::exists(dir / name)) configs.push_back(read_json(dir / name));
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

bool is_letter(utf8proc_int32_t cp) {
  const auto category = utf8proc_category(cp);
  return category >= UTF8PROC_CATEGORY_LU && category <= UTF8PROC_CATEGORY_LO;
}

bool is_number(utf8proc_int32_t cp) {
  const auto category = utf8proc_category(cp);
  return category >= UTF8PROC_CATEGORY_ND && category <= UTF8PROC_CATEGORY_NO;
}

// Unicode whitespace as the reference tokenizer's regex `\s` sees it.
bool is_space(utf8proc_int32_t cp) {
  if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x85) return true;
  const auto category = utf8proc_category(cp);
  return category == UTF8PROC_CATEGORY_ZS || category == UTF8PROC_CATEGORY_ZL ||
         category == UTF8PROC_CATEGORY_ZP;
}

std::vector<utf8proc_int32_t> decode_utf8(std::string_view text) {
  std::vector<utf8proc_int32_t> code_points;
  code_points.reserve(text.size());
  auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  size_t offset = 0;
  while (offset < text.size()) {
    utf8proc_int32_t cp = 0;
    const auto used =
        utf8proc_iterate(bytes + offset, static_cast<utf8proc_ssize_t>(text.size() - offset), &cp);
    if (used <= 0) {
      throw Error(
          ErrorCode::kInvalidArgument,
          "prompt text is not valid UTF-8 (bad byte at offset " + std::to_string(offset) + ")");
    }
    code_points.push_back(cp);
    offset += static_cast<size_t>(used);
  }
  return code_points;
}

void append_utf8(std::string& out, utf8proc_int32_t cp) {
  utf8proc_uint8_t buffer[4];
  const auto length = utf8proc_encode_char(cp, buffer);
  out.append(reinterpret_cast<const char*>(buffer), static_cast<size_t>(length));
}

std::vector<utf8proc_int32_t> nfc(std::string_view text) {
  utf8proc_uint8_t* composed = nullptr;
  const auto length =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                   static_cast<utf8proc_ssize_t>(text.size()), &composed,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (length < 0) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string("prompt text cannot be normalised: ") + utf8proc_errmsg(length));
  }
  std::string_view view(reinterpret_cast<const char*>(composed), static_cast<size_t>(length));
  std::vector<utf8proc_int32_t> code_points;
  try {
    code_points = decode_utf8(view);
  } catch (...) {
    std::free(composed);
    throw;
  }
  std::free(composed);
  return code_points;
}

// NFC, every whitespace run to one space, then full lowercase (U+0130 is the one character whose
// lowercase is two code points).
std::vector<utf8proc_int32_t> normalize(std::string_view text) {
  std::vector<utf8proc_int32_t> out;
  bool in_space = false;
  for (utf8proc_int32_t cp : nfc(text)) {
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
      out.push_back(utf8proc_tolower(cp));
    }
  }
  return out;
}

bool has_ascii_at(const std::vector<utf8proc_int32_t>& text, size_t i, std::string_view ascii) {
  if (i > text.size() || text.size() - i < ascii.size()) return false;
  for (size_t k = 0; k < ascii.size(); ++k) {
    if (text[i + k] != static_cast<utf8proc_int32_t>(ascii[k])) return false;
  }
  return true;
}

// "startoftext" or "endoftext" if "<|startoftext|>" or "<|endoftext|>" is spelled out at `i`.
std::optional<std::string_view> special_spelling_at(const std::vector<utf8proc_int32_t>& text,
                                                    size_t i) {
  for (std::string_view name : {"startoftext", "endoftext"}) {
    if (has_ascii_at(text, i, "<|") && has_ascii_at(text, i + 2, name) &&
        has_ascii_at(text, i + 2 + name.size(), "|>")) {
      return name;
    }
  }
  return std::nullopt;
}

// Length of a contraction ('s 't 're 've 'm 'll 'd) starting at `i`, or 0.
size_t contraction_length(const std::vector<utf8proc_int32_t>& text, size_t i) {
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
std::vector<std::string> pre_tokenize(const std::vector<utf8proc_int32_t>& text) {
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
    std::string piece;
    for (size_t k = i; k < end; ++k) append_utf8(piece, text[k]);
    pieces.push_back(std::move(piece));
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

ClipTokenizer ClipTokenizer::load(const std::string& dir) {
  const std::filesystem::path root(dir);
  auto model = std::make_shared<Model>();
  model->vocab = read_vocab(root / "vocab.json");
  model->merges = read_merges(root / "merges.txt", model->vocab);

  const auto configs = special_token_configs(root);
  auto require = [&](const std::string& key, const std::string& fallback) {
    const std::string text = special_token(configs, key, fallback);
    auto it = model->vocab.find(text);
    if (it == model->vocab.end()) {
      throw Error(ErrorCode::kCorruptFile,
                  "tokenizer " + dir + ": " + key + " '" + text + "' is not in vocab.json");
    }
    return std::pair{text, it->second};
  };
  const auto bos = require("bos_token", "<|startoftext|>");
  const auto eos = require("eos_token", "<|endoftext|>");
  const auto unk = require("unk_token", "<|endoftext|>");
  const auto pad = require("pad_token", "<|endoftext|>");
  model->bos_id = bos.second;
  model->eos_id = eos.second;
  model->unk_id = unk.second;
  model->pad_id = pad.second;
  for (const auto& special : {bos, eos, unk, pad}) {
    bool known = false;
    for (const auto& [text, id] : model->special_tokens) known = known || text == special.first;
    if (!known && !special.first.empty()) model->special_tokens.push_back(special);
  }
  std::sort(model->special_tokens.begin(), model->special_tokens.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });

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
  auto encode_plain = [&](std::string_view plain) {
    if (plain.empty()) return;
    for (const std::string& piece : pre_tokenize(normalize(plain))) {
      const auto piece_ids = model_->encode_piece(piece);
      ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
    }
  };
  size_t plain_start = 0, i = 0;
  while (i < text.size()) {
    const std::pair<std::string, int>* match = nullptr;
    for (const auto& special : model_->special_tokens) {
      if (text.compare(i, special.first.size(), special.first) == 0) {
        match = &special;
        break;
      }
    }
    if (match == nullptr) {
      ++i;
      continue;
    }
    encode_plain(std::string_view(text).substr(plain_start, i - plain_start));
    ids.push_back(match->second);
    i += match->first.size();
    plain_start = i;
  }
  encode_plain(std::string_view(text).substr(plain_start));
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

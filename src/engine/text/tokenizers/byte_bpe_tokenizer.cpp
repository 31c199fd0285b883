// ByteBpeTokenizer: tokenizer.json reading and checks, added-token cutting, NFC, byte-level BPE.
#include "engine/text/tokenizers/byte_bpe_tokenizer.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>
#include <string_view>
#include <unordered_map>

#include "core/error.h"
#include "engine/text/tokenizers/byte_bpe_pretokenizer.h"
#include "engine/tokenizer.h"
#include "engine/utf8.h"

namespace df::engine {

namespace {

using nlohmann::json;

struct Merge {
  int rank;
  int result_id;
};

uint64_t pair_key(int left, int right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

struct AddedToken {
  std::string content;
  int id;
};

}  // namespace

struct ByteBpeTokenizer::Model {
  std::unordered_map<std::string, int> vocab;  // BPE vocabulary and added tokens
  std::unordered_map<uint64_t, Merge> merges;  // key: pair_key(left id, right id)
  std::vector<int> byte_ids;                   // id of the alphabet character of each byte
  bool ignore_merges = false;                  // a piece found whole in the vocabulary is one id
  // Added tokens, longest first: cut from the raw text, or from the NFC text.
  std::vector<AddedToken> raw_added_tokens;
  std::vector<AddedToken> normalized_added_tokens;
  size_t size = 0;

  std::vector<int32_t> byte_pair_encode(std::string_view piece) const;
  void encode_normalized(std::string_view text, std::vector<int32_t>& ids) const;
};

namespace {

[[noreturn]] void corrupt(const std::string& path, const std::string& what) {
  throw Error(ErrorCode::kCorruptFile, "tokenizer file " + path + " " + what);
}

[[noreturn]] void unsupported(const std::string& path, const std::string& what) {
  throw Error(ErrorCode::kUnsupported,
              "tokenizer file " + path + " is not a Qwen2-style byte-level BPE tokenizer: " + what);
}

json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) corrupt(path, "is missing or unreadable");
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return json::parse(text.str());
  } catch (const json::exception& e) {
    corrupt(path, std::string("is not valid JSON: ") + e.what());
  }
}

bool is_valid_id(const json& id) {
  return id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < INT32_MAX;
}

std::string type_of(const json& component) {
  if (!component.is_object() || !component.contains("type") || !component.at("type").is_string()) {
    return "";
  }
  return component.at("type").get<std::string>();
}

// The normaliser must be absent or NFC (alone or as the only step of a Sequence).
void check_normalizer(const json& doc, const std::string& path) {
  const json normalizer = doc.value("normalizer", json());
  if (normalizer.is_null() || type_of(normalizer) == "NFC") return;
  if (type_of(normalizer) == "Sequence" && normalizer.value("normalizers", json()).is_array() &&
      normalizer.at("normalizers").size() == 1 && type_of(normalizer.at("normalizers")[0]) == "NFC") {
    return;
  }
  unsupported(path, "its normalizer is " + normalizer.dump());
}

// The pre-tokenizer must be Sequence[Split(Qwen2 pattern, Isolated), ByteLevel(use_regex=false)].
void check_pre_tokenizer(const json& doc, const std::string& path) {
  const json pre = doc.value("pre_tokenizer", json());
  const json steps = type_of(pre) == "Sequence" ? pre.value("pretokenizers", json()) : json();
  const bool shaped = steps.is_array() && steps.size() == 2 && type_of(steps[0]) == "Split" &&
                      type_of(steps[1]) == "ByteLevel";
  if (!shaped) unsupported(path, "its pre_tokenizer is not Split + ByteLevel");
  const json& split = steps[0];
  const json pattern = split.value("pattern", json()).value("Regex", json());
  if (!pattern.is_string() || pattern.get<std::string>() != kQwen2SplitPattern) {
    unsupported(path, "its split pattern " + pattern.dump() + " is not Qwen2's");
  }
  if (split.value("behavior", "") != "Isolated" || split.value("invert", false)) {
    unsupported(path, "its split does not isolate the pattern's matches");
  }
  if (steps[1].value("use_regex", true)) {
    unsupported(path, "its ByteLevel step splits with its own regex");
  }
}

std::unordered_map<std::string, int> read_vocab(const json& model, const std::string& path) {
  const json vocab_json = model.value("vocab", json());
  if (!vocab_json.is_object() || vocab_json.empty()) corrupt(path, "has no model.vocab object");
  std::unordered_map<std::string, int> vocab;
  vocab.reserve(vocab_json.size());
  for (const auto& [token, id] : vocab_json.items()) {
    if (!is_valid_id(id)) corrupt(path, "gives token '" + token + "' no valid id");
    vocab.emplace(token, id.get<int>());
  }
  return vocab;
}

// One model.merges entry: "a b" (older files) or ["a", "b"].
std::pair<std::string, std::string> read_merge(const json& entry, size_t index,
                                               const std::string& path) {
  if (entry.is_array() && entry.size() == 2 && entry[0].is_string() && entry[1].is_string()) {
    return {entry[0].get<std::string>(), entry[1].get<std::string>()};
  }
  if (entry.is_string()) {
    const std::string text = entry.get<std::string>();
    const size_t space = text.find(' ');
    if (space != std::string::npos && space > 0 && space + 1 < text.size() &&
        text.find(' ', space + 1) == std::string::npos) {
      return {text.substr(0, space), text.substr(space + 1)};
    }
  }
  corrupt(path, "merge " + std::to_string(index) + " is not a pair of tokens: " + entry.dump());
}

std::unordered_map<uint64_t, Merge> read_merges(const json& model,
                                                const std::unordered_map<std::string, int>& vocab,
                                                const std::string& path) {
  const json list = model.value("merges", json());
  if (!list.is_array()) corrupt(path, "has no model.merges list");
  std::unordered_map<uint64_t, Merge> merges;
  merges.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    const auto [left, right] = read_merge(list[i], i, path);
    auto id_of = [&](const std::string& token) {
      auto it = vocab.find(token);
      if (it == vocab.end()) {
        corrupt(path, "merge " + std::to_string(i) + " needs '" + token + "', not in the vocabulary");
      }
      return it->second;
    };
    const int rank = static_cast<int>(i);
    merges.try_emplace(pair_key(id_of(left), id_of(right)), Merge{rank, id_of(left + right)});
  }
  return merges;
}

void check_bpe_model(const json& model, const std::string& path) {
  if (type_of(model) != "BPE") unsupported(path, "its model is " + model.dump().substr(0, 80));
  for (const char* key : {"end_of_word_suffix", "continuing_subword_prefix"}) {
    const json value = model.value(key, json());
    if (!value.is_null() && value != "") unsupported(path, std::string("it sets ") + key);
  }
}


// Cuts `text` at the added tokens (at the leftmost position where any matches, the longest):
// on_text(run) for each run between them (possibly empty), on_token(id) for each token.
void split_at_tokens(std::string_view text, const std::vector<AddedToken>& tokens,
                     const std::function<void(std::string_view)>& on_text,
                     const std::function<void(int)>& on_token) {
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    auto match = std::find_if(tokens.begin(), tokens.end(), [&](const AddedToken& token) {
      return text.substr(i).starts_with(token.content);
    });
    if (match == tokens.end()) {
      ++i;
      continue;
    }
    on_text(text.substr(start, i - start));
    on_token(match->id);
    i += match->content.size();
    start = i;
  }
  on_text(text.substr(start));
}

// The added tokens, split into those matched in the raw text and those matched after NFC, each
// longest first.
struct AddedTokens {
  std::vector<AddedToken> raw, normalized;
};

AddedTokens read_added_tokens(const json& doc, const std::string& path) {
  AddedTokens tokens;
  const json list = doc.value("added_tokens", json::array());
  if (!list.is_array()) corrupt(path, "has an added_tokens entry that is no list");
  for (const auto& entry : list) {
    if (!entry.is_object() || !entry.value("content", json()).is_string() ||
        entry.at("content").get<std::string>().empty() || !is_valid_id(entry.value("id", json()))) {
      corrupt(path, "has an added token without content or valid id: " + entry.dump());
    }
    if (entry.value("lstrip", false) || entry.value("rstrip", false) ||
        entry.value("single_word", false)) {
      unsupported(path, "added token " + entry.dump() + " strips spaces or matches whole words");
    }
    AddedToken token{entry.at("content").get<std::string>(), entry.at("id").get<int>()};
    // As in the tokenizers library, "normalized" defaults to the opposite of "special".
    const bool special = entry.value("special", false);
    const bool normalized = entry.value("normalized", !special);
    if (normalized) token.content = nfc_utf8(token.content);
    (normalized ? tokens.normalized : tokens.raw).push_back(std::move(token));
  }
  auto longest_first = [](const AddedToken& a, const AddedToken& b) {
    return a.content.size() > b.content.size();
  };
  std::stable_sort(tokens.raw.begin(), tokens.raw.end(), longest_first);
  std::stable_sort(tokens.normalized.begin(), tokens.normalized.end(), longest_first);
  return tokens;
}

std::vector<int> read_byte_ids(const std::unordered_map<std::string, int>& vocab,
                               const std::string& path) {
  std::vector<int> ids(256);
  const auto& alphabet = byte_level_alphabet();
  for (int byte = 0; byte < 256; ++byte) {
    auto it = vocab.find(alphabet[byte]);
    if (it == vocab.end()) corrupt(path, "has no token for byte " + std::to_string(byte));
    ids[byte] = it->second;
  }
  return ids;
}

}  // namespace

ByteBpeTokenizer ByteBpeTokenizer::from_file(const std::string& path) {
  const json doc = read_json_file(path);
  if (!doc.is_object() || !doc.value("model", json()).is_object()) {
    corrupt(path, "has no tokenizer model");
  }
  const json& model_json = doc.at("model");
  check_bpe_model(model_json, path);
  check_normalizer(doc, path);
  check_pre_tokenizer(doc, path);

  auto model = std::make_shared<Model>();
  model->vocab = read_vocab(model_json, path);
  model->merges = read_merges(model_json, model->vocab, path);
  model->byte_ids = read_byte_ids(model->vocab, path);
  model->ignore_merges = model_json.value("ignore_merges", false);
  AddedTokens added = read_added_tokens(doc, path);
  for (const auto* list : {&added.raw, &added.normalized}) {
    for (const AddedToken& token : *list) model->vocab.insert_or_assign(token.content, token.id);
  }
  model->raw_added_tokens = std::move(added.raw);
  model->normalized_added_tokens = std::move(added.normalized);
  for (const auto& [token, id] : model->vocab) {
    model->size = std::max(model->size, static_cast<size_t>(id) + 1);
  }
  return ByteBpeTokenizer(std::move(model));
}

std::vector<int32_t> ByteBpeTokenizer::Model::byte_pair_encode(std::string_view piece) const {
  const int n = static_cast<int>(piece.size());
  std::vector<int32_t> ids(n);
  std::vector<int> next(n), prev(n);
  for (int i = 0; i < n; ++i) {
    ids[i] = byte_ids[static_cast<uint8_t>(piece[i])];
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  // Lowest rank first, then leftmost: the order in which BPE applies merges.
  struct Candidate {
    int rank, left, left_id, right_id, result_id;
    bool operator>(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : left > other.left;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto consider = [&](int left) {
    if (left < 0 || next[left] < 0) return;
    auto it = merges.find(pair_key(ids[left], ids[next[left]]));
    if (it != merges.end()) {
      queue.push({it->second.rank, left, ids[left], ids[next[left]], it->second.result_id});
    }
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    const int right = next[c.left];
    // Stale when the left symbol was absorbed or either side was merged since.
    if (prev[c.left] == -2 || right < 0 || ids[c.left] != c.left_id || ids[right] != c.right_id) {
      continue;
    }
    ids[c.left] = c.result_id;
    next[c.left] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.left;
    prev[right] = -2;  // absorbed
    consider(prev[c.left]);
    consider(c.left);
  }
  std::vector<int32_t> out;
  for (int i = 0; i >= 0; i = next[i]) out.push_back(ids[i]);
  return out;
}

void ByteBpeTokenizer::Model::encode_normalized(std::string_view text,
                                                std::vector<int32_t>& ids) const {
  for (const std::string& piece : qwen2_pre_tokenize(decode_utf8(text))) {
    if (ignore_merges) {
      std::string spelled;
      for (char byte : piece) spelled += byte_level_alphabet()[static_cast<uint8_t>(byte)];
      if (auto it = vocab.find(spelled); it != vocab.end()) {
        ids.push_back(it->second);
        continue;
      }
    }
    const auto piece_ids = byte_pair_encode(piece);
    ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
  }
}

std::vector<int32_t> ByteBpeTokenizer::encode(const std::string& text) const {
  decode_utf8(text);  // rejects invalid UTF-8 before anything is cut
  std::vector<int32_t> ids;
  auto add_token = [&](int id) { ids.push_back(id); };
  auto encode_run = [&](std::string_view normalized) { model_->encode_normalized(normalized, ids); };
  auto encode_raw = [&](std::string_view raw) {
    if (raw.empty()) return;
    split_at_tokens(nfc_utf8(raw), model_->normalized_added_tokens, encode_run, add_token);
  };
  split_at_tokens(text, model_->raw_added_tokens, encode_raw, add_token);
  return ids;
}

int ByteBpeTokenizer::token_id(const std::string& token) const {
  auto it = model_->vocab.find(token);
  if (it == model_->vocab.end()) {
    throw Error(ErrorCode::kInvalidArgument, "the tokenizer has no token '" + token + "'");
  }
  return it->second;
}

size_t ByteBpeTokenizer::vocab_size() const { return model_->size; }

}  // namespace df::engine

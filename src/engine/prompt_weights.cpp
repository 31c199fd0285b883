// ComfyUI-compatible emphasis parsing and chunked tokenization of weighted prompt segments.
#include "engine/prompt_weights.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <iostream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "core/error.h"
#include "engine/utf8.h"

namespace df::engine {
namespace {

constexpr double kEmphasis = 1.1;
constexpr int kMaxNesting = 100;
constexpr size_t kLongGroupTokens = 8;  // token groups this long are split across chunks
constexpr std::u32string_view kEmbeddingPrefix = U"embedding:";
constexpr double kInfinity = std::numeric_limits<double>::infinity();

// Escaped parentheses stand in as two-byte placeholders while the weights are parsed.
constexpr std::string_view kEscapedClose("\0\1", 2);
constexpr std::string_view kEscapedOpen("\0\2", 2);

std::string escape_parentheses(const std::string& prompt) {
  std::string out;
  out.reserve(prompt.size());
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] == '\\' && i + 1 < prompt.size() &&
        (prompt[i + 1] == '(' || prompt[i + 1] == ')')) {
      out += prompt[i + 1] == ')' ? kEscapedClose : kEscapedOpen;
      ++i;
    } else {
      out += prompt[i];
    }
  }
  return out;
}

std::string unescape_parentheses(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const std::string_view rest = text.substr(i);
    if (rest.starts_with(kEscapedClose) || rest.starts_with(kEscapedOpen)) {
      out += rest.starts_with(kEscapedClose) ? ')' : '(';
      ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

// Cuts text into top-level pieces: plain runs and "(...)" groups. An unmatched ')' is kept as
// text (the depth counter goes negative, as in ComfyUI); an unclosed '(' group runs to the end.
std::vector<std::string> split_top_level_groups(std::string_view text) {
  std::vector<std::string> groups;
  std::string current;
  int depth = 0;
  for (char c : text) {
    if (c == '(') {
      if (depth == 0 && !current.empty()) {
        groups.push_back(std::move(current));
        current.clear();
      }
      current += c;
      ++depth;
    } else if (c == ')') {
      --depth;
      current += c;
      if (depth == 0) {
        groups.push_back(std::move(current));
        current.clear();
      }
    } else {
      current += c;
    }
  }
  if (!current.empty()) groups.push_back(std::move(current));
  return groups;
}

bool is_ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Consumes digits with single underscores between them (Python's float syntax); returns how many
// digits were read, appending them to `digits`.
size_t read_digits(std::string_view text, size_t& i, std::string& digits) {
  size_t count = 0;
  while (i < text.size()) {
    if (is_digit(text[i])) {
      digits += text[i++];
      ++count;
    } else if (text[i] == '_' && count > 0 && i + 1 < text.size() && is_digit(text[i + 1])) {
      ++i;
    } else {
      break;
    }
  }
  return count;
}

// Parses a number the way Python's float() does for ASCII text: surrounding whitespace, a sign,
// decimal digits (with '_' separators), fraction, exponent, "inf", "infinity", "nan". Values
// beyond double range come back as infinity.
std::optional<double> parse_float(std::string_view text) {
  while (!text.empty() && is_ascii_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_ascii_space(text.back())) text.remove_suffix(1);
  std::string number;
  size_t i = 0;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    if (text[i] == '-') number += '-';
    ++i;
  }
  std::string word(text.substr(i));
  std::transform(word.begin(), word.end(), word.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (word == "inf" || word == "infinity") return number.empty() ? kInfinity : -kInfinity;
  if (word == "nan") return std::numeric_limits<double>::quiet_NaN();
  const size_t whole = read_digits(text, i, number);
  size_t fraction = 0;
  if (i < text.size() && text[i] == '.') {
    number += text[i++];
    fraction = read_digits(text, i, number);
  }
  if (whole + fraction == 0) return std::nullopt;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    number += text[i++];
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) number += text[i++];
    if (read_digits(text, i, number) == 0) return std::nullopt;
  }
  if (i != text.size()) return std::nullopt;
  double value = 0;
  if (std::from_chars(number.data(), number.data() + number.size(), value).ec != std::errc()) {
    return kInfinity;  // beyond double range
  }
  return value;
}

void collect_segments(std::string_view text, double weight, int depth,
                      std::vector<std::pair<std::string, double>>& out) {
  if (depth > kMaxNesting) {
    throw Error(ErrorCode::kInvalidArgument, "prompt nests parentheses more than " +
                                                 std::to_string(kMaxNesting) + " levels deep");
  }
  for (const std::string& group : split_top_level_groups(text)) {
    if (group.size() < 2 || group.front() != '(' || group.back() != ')') {
      out.emplace_back(group, weight);
      continue;
    }
    std::string_view inner = std::string_view(group).substr(1, group.size() - 2);
    double inner_weight = weight * kEmphasis;
    const size_t colon = inner.rfind(':');
    if (colon != std::string_view::npos && colon > 0) {
      if (auto explicit_weight = parse_float(inner.substr(colon + 1))) {
        inner_weight = *explicit_weight;
        inner = inner.substr(0, colon);
      }
    }
    collect_segments(inner, inner_weight, depth + 1, out);
  }
}

std::vector<std::pair<std::string, double>> weighted_segments(const std::string& prompt) {
  std::vector<std::pair<std::string, double>> segments;
  collect_segments(escape_parentheses(prompt), 1.0, 0, segments);
  for (auto& [text, weight] : segments) {
    text = unescape_parentheses(text);
    if (!(std::abs(weight) <= std::numeric_limits<float>::max())) {  // also catches NaN
      std::ostringstream message;
      message << "the prompt weight of '" << text << "' is " << weight
              << "; weights must be finite float numbers";
      throw Error(ErrorCode::kInvalidArgument, message.str());
    }
  }
  return segments;
}

// Whitespace as Python's str.isspace() and the `\s` of its re module see it.
bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

// Python's str.split() without arguments: the runs of non-whitespace.
std::vector<std::u32string> split_on_whitespace(std::u32string_view text) {
  std::vector<std::u32string> words;
  size_t i = 0;
  while (i < text.size()) {
    if (is_python_space(text[i])) {
      ++i;
      continue;
    }
    const size_t start = i;
    while (i < text.size() && !is_python_space(text[i])) ++i;
    words.emplace_back(text.substr(start, i - start));
  }
  return words;
}

// A weighted segment is cut before every "embedding:" that follows whitespace; each piece is
// tokenized on its own.
std::vector<std::u32string> split_before_embeddings(std::u32string_view segment) {
  std::vector<std::u32string> pieces;
  size_t start = 0;
  for (size_t i = 1; i < segment.size(); ++i) {
    if (is_python_space(segment[i - 1]) && segment.substr(i).starts_with(kEmbeddingPrefix)) {
      pieces.emplace_back(segment.substr(start, i - start));
      start = i;
    }
  }
  pieces.emplace_back(segment.substr(start));
  return pieces;
}

// A piece "embedding:<name> <rest>" taken apart: the name is the first whitespace-separated
// word (newlines around it trimmed), cut before a '<' or '['; the cut-off part and the rest are
// text.
struct EmbeddingReference {
  std::u32string name;
  std::u32string rest;
};

EmbeddingReference parse_embedding_reference(std::u32string_view piece) {
  std::u32string_view reference = piece.substr(kEmbeddingPrefix.size());
  while (!reference.empty() && reference.front() == U'\n') reference.remove_prefix(1);
  while (!reference.empty() && reference.back() == U'\n') reference.remove_suffix(1);
  const std::vector<std::u32string> words = split_on_whitespace(reference);
  if (words.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "the prompt has \"embedding:\" without an embedding name after it");
  }
  EmbeddingReference out{words.front(), {}};
  for (size_t i = 1; i < words.size(); ++i) {
    if (i > 1) out.rest += U' ';
    out.rest += words[i];
  }
  if (const size_t cut = out.name.find_first_of(U"<["); cut != std::u32string::npos) {
    out.rest = out.rest.empty() ? out.name.substr(cut) : out.name.substr(cut) + U' ' + out.rest;
    out.name.resize(cut);
  }
  return out;
}

// What a piece "embedding:..." becomes: the embedding's slots when found, and the text still to
// tokenize. As ComfyUI, a name that is not found is tried again with the commas at its ends
// stripped; then as many of its last characters as there were commas stay text.
struct ResolvedEmbedding {
  std::optional<EmbeddingSlots> slots;
  std::u32string text;
};

ResolvedEmbedding resolve_embedding(std::u32string_view piece, const EmbeddingLookup& lookup) {
  const EmbeddingReference reference = parse_embedding_reference(piece);
  const auto find = [&](const std::u32string& name) -> std::optional<EmbeddingSlots> {
    return lookup ? lookup(encode_utf8(name)) : std::nullopt;
  };
  ResolvedEmbedding out{find(reference.name), reference.rest};
  if (!out.slots) {
    const std::u32string& name = reference.name;
    const size_t first = name.find_first_not_of(U',');
    const size_t stripped_size =
        first == std::u32string::npos ? 0 : name.find_last_not_of(U',') + 1 - first;
    if (stripped_size < name.size()) {
      out.slots = find(name.substr(first == std::u32string::npos ? 0 : first, stripped_size));
      out.text = name.substr(stripped_size) + U" " + reference.rest;
    }
  }
  if (!out.slots) {
    std::cerr << "warning, embedding:" << encode_utf8(reference.name)
              << " does not exist, ignoring\n";
  }
  return out;
}

std::vector<WeightedToken> embedding_group(const EmbeddingSlots& slots, float weight) {
  std::vector<WeightedToken> group;
  for (int row = 0; row < slots.vectors; ++row) {
    group.push_back({WeightedToken::kNoToken, weight, slots.index, row});
  }
  return group;
}

std::vector<WeightedToken> token_group(const std::vector<int>& ids, float weight) {
  std::vector<WeightedToken> group;
  for (int id : ids) group.push_back({id, weight});
  return group;
}

// Packs token groups (the tokens of one piece of text) into chunks of BOS + tokens + EOS +
// padding, ComfyUI's way.
class ChunkPacker {
 public:
  explicit ChunkPacker(const ClipTokenizer& tokenizer) : tokenizer_(tokenizer) { start_chunk(); }

  void add_group(const std::vector<WeightedToken>& group) {
    const bool splittable = group.size() >= kLongGroupTokens;
    size_t next = 0;
    while (next < group.size()) {
      const size_t room = ClipTokenizer::kMaxLength - 1 - current().size();
      const size_t left = group.size() - next;
      if (left <= room) {
        append(group, next, left);
        return;
      }
      if (splittable) {
        append(group, next, room);
        next += room;
      }
      finish_chunk();
      start_chunk();
    }
  }

  std::vector<std::vector<WeightedToken>> finish() {
    finish_chunk();
    return std::move(chunks_);
  }

 private:
  std::vector<WeightedToken>& current() { return chunks_.back(); }

  void start_chunk() { chunks_.push_back({{tokenizer_.bos_id(), 1.0f}}); }

  void finish_chunk() {
    current().push_back({tokenizer_.eos_id(), 1.0f});
    current().resize(ClipTokenizer::kMaxLength, {tokenizer_.pad_id(), 1.0f});
  }

  void append(const std::vector<WeightedToken>& group, size_t from, size_t count) {
    current().insert(current().end(), group.begin() + static_cast<std::ptrdiff_t>(from),
                     group.begin() + static_cast<std::ptrdiff_t>(from + count));
  }

  const ClipTokenizer& tokenizer_;
  std::vector<std::vector<WeightedToken>> chunks_;
};

}  // namespace

std::vector<std::pair<std::string, float>> parse_prompt_weights(const std::string& prompt) {
  std::vector<std::pair<std::string, float>> segments;
  for (auto& [text, weight] : weighted_segments(prompt)) {
    segments.emplace_back(std::move(text), static_cast<float>(weight));
  }
  return segments;
}

std::vector<std::vector<WeightedToken>> tokenize_weighted(const ClipTokenizer& tokenizer,
                                                          const std::string& prompt,
                                                          const EmbeddingLookup& embeddings) {
  decode_utf8(prompt);  // rejects invalid UTF-8, naming its offset in the whole prompt
  ChunkPacker packer(tokenizer);
  for (const auto& [segment, weight] : weighted_segments(prompt)) {
    const auto w = static_cast<float>(weight);
    for (const std::u32string& piece : split_before_embeddings(decode_utf8(segment))) {
      std::u32string text = piece;
      if (piece.starts_with(kEmbeddingPrefix)) {
        ResolvedEmbedding resolved = resolve_embedding(piece, embeddings);
        if (resolved.slots) packer.add_group(embedding_group(*resolved.slots, w));
        text = std::move(resolved.text);
      }
      if (!text.empty()) packer.add_group(token_group(tokenizer.encode_text(encode_utf8(text)), w));
    }
  }
  return packer.finish();
}

bool has_non_unit_weights(const std::vector<std::vector<WeightedToken>>& chunks) {
  for (const auto& chunk : chunks) {
    for (const WeightedToken& token : chunk) {
      if (token.weight != 1.0f) return true;
    }
  }
  return false;
}

}  // namespace df::engine

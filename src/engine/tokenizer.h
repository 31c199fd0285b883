// CLIP byte-level BPE tokenizer: reads Hugging Face tokenizer folders, encodes like CLIPTokenizer.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace df::engine {

// The byte-level BPE alphabet (GPT-2 / CLIP): for each byte 0-255 the UTF-8 text of the character
// that stands for it. Printable Latin-1 bytes stand for themselves; the other 68 bytes map to
// U+0100 onwards in byte order.
const std::vector<std::string>& byte_level_alphabet();

// Behaves like transformers' CLIPTokenizer on the same folder: special tokens (bos, eos, unk, pad)
// are cut out of the raw text first; the rest is NFC-normalised, whitespace runs become one space,
// lowercased, split into letter runs / single digits / symbol runs / contractions, and each piece
// is byte-level BPE encoded with "</w>" on its last character. Thread-safe; copies share one cache.
class ClipTokenizer {
 public:
  // Length of one CLIP text-encoder input: BOS + 75 tokens + EOS.
  static constexpr int kMaxLength = 77;

  // Reads vocab.json, merges.txt and the special tokens (special_tokens_map.json over
  // tokenizer_config.json) from `dir`. Throws Error(kCorruptFile) for missing or broken files.
  static ClipTokenizer load(const std::string& dir);

  // BPE ids of `text`, without BOS/EOS. Throws Error(kInvalidArgument) for text that is not UTF-8.
  std::vector<int> encode_text(const std::string& text) const;
  // BOS + ids + EOS, cut to kMaxLength (EOS kept last) and padded to kMaxLength with pad_id().
  std::vector<int> encode(const std::string& text) const;

  int bos_id() const;
  int eos_id() const;
  int pad_id() const;
  // The id of a vocabulary entry (e.g. "cat</w>"), if present.
  std::optional<int> token_id(const std::string& token) const;

 private:
  struct Model;
  explicit ClipTokenizer(std::shared_ptr<Model> model) : model_(std::move(model)) {}

  std::shared_ptr<Model> model_;
};

}  // namespace df::engine

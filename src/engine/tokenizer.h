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

// Behaves like transformers' CLIPTokenizer on the same folder: added tokens (the special tokens
// bos, eos, unk, pad, and tokenizer.json's added_tokens) are cut out of the raw text first; the
// rest is NFC-normalised, whitespace runs become one space, lowercased, cut again at added tokens
// marked "normalized" (tokenizer.json only), split into letter runs / single digits / symbol runs
// / contractions, and each piece is byte-level BPE encoded with "</w>" on its last character.
// Thread-safe; copies share one cache.
class ClipTokenizer {
 public:
  // Length of one CLIP text-encoder input: BOS + 75 tokens + EOS.
  static constexpr int kMaxLength = 77;

  // Reads a Hugging Face tokenizer folder: vocab.json + merges.txt when both are there, otherwise
  // tokenizer.json (model.vocab, model.merges as "a b" strings or ["a", "b"] pairs, added_tokens;
  // the layout transformers 5 saves). Special tokens come from special_tokens_map.json over
  // tokenizer_config.json (strings or {"content": ...} objects), defaulting to CLIP's. Throws
  // Error(kCorruptFile) for missing or broken files, Error(kUnsupported) for a tokenizer.json that
  // holds no CLIP BPE model.
  static ClipTokenizer load(const std::string& dir);
  // The same, padding with `pad_token` instead of the files' pad token unless it is empty. Only
  // the padding id changes: the text is cut at the same special tokens as without the override.
  // That is how ComfyUI pads the OpenCLIP encoders (SD2, SDXL's second) with "!" (id 0) while a
  // "!" in the prompt stays ordinary text. Throws Error(kCorruptFile) if the vocabulary has no
  // `pad_token`.
  static ClipTokenizer load(const std::string& dir, const std::string& pad_token);

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

// Byte-level BPE tokenizer of Qwen2/Qwen3 tokenizer.json files: encodes like transformers' Qwen2TokenizerFast.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace df::engine {

// Reads a Hugging Face tokenizer.json holding a byte-level BPE model with the Qwen2 pipeline:
// NFC normaliser, pre-tokenizer Split(Qwen2 pattern, see byte_bpe_pretokenizer.h) + ByteLevel
// without its own regex, BPE without end-of-word suffix or continuing-subword prefix. encode()
// then does what the tokenizers library does with that file: added tokens (<|im_start|>,
// <|endoftext|>, ...) are cut out of the raw text first (leftmost, longest on ties; tokens marked
// "normalized" are cut out of the NFC text instead), the rest is NFC-normalised, split, mapped
// to the byte-level alphabet and BPE-merged by merge rank. No BOS/EOS is added (Qwen adds none).
// Immutable and thread-safe; copies share one model.
class ByteBpeTokenizer {
 public:
  // Throws Error(kCorruptFile) naming `path` when the file is missing, no JSON, or inconsistent
  // (a merge of unknown tokens, a byte without a token, bad ids), and Error(kUnsupported) for
  // another tokenizer model or pipeline (e.g. SentencePiece, another split pattern, added tokens
  // with lstrip, rstrip or single_word, which Qwen's files never set).
  static ByteBpeTokenizer from_file(const std::string& path);

  // The ids of `text`. Throws Error(kInvalidArgument) for text that is not UTF-8.
  std::vector<int32_t> encode(const std::string& text) const;

  // The id of an added token or vocabulary entry (e.g. "<|im_end|>"). Throws
  // Error(kInvalidArgument) when the tokenizer has no such token.
  int token_id(const std::string& token) const;

  // Number of ids: one more than the largest id of the vocabulary and the added tokens (what
  // len(tokenizer) is in transformers).
  size_t vocab_size() const;

 private:
  struct Model;
  explicit ByteBpeTokenizer(std::shared_ptr<const Model> model) : model_(std::move(model)) {}

  std::shared_ptr<const Model> model_;
};

}  // namespace df::engine

// A tiny Qwen2-style tokenizer (real tokenizer.json layout, a few hundred tokens) written locally for test models.
#pragma once

#include <string>

namespace df::engine {

// Writes tokenizer.json and tokenizer_config.json into `dir` (created if missing) in the layout of
// the Qwen3 tokenizer that Z-Image folders carry, scaled down: ids 0-255 are the byte-level
// characters of bytes 0-255, then one id per merge learned by deterministic byte-pair-encoding
// training on built-in prompt words (pre-tokenized with Qwen2's pattern), then the added tokens
// <|endoftext|>, <|im_start|>, <|im_end|> (special) and <think>, </think>. tokenizer_config.json
// names the end and padding tokens and carries the Qwen3 chat template's user-message and
// generation-prompt parts. ByteBpeTokenizer and transformers' Qwen2TokenizerFast both load it.
// Throws Error(kIo) if a file cannot be written.
void write_tiny_qwen_tokenizer(const std::string& dir);

// Number of ids of the tiny tokenizer (its last added token has this minus one).
int tiny_qwen_vocab_size();

}  // namespace df::engine

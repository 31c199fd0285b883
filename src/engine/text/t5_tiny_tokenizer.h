// A tiny T5 SentencePiece tokenizer (real file layout, a few hundred pieces) generated for test models.
#pragma once

#include <string>

namespace df::engine {

// Writes spiece.model, tokenizer_config.json and special_tokens_map.json into `dir` (created if
// missing) in the layout of T5's tokenizer, scaled down: "<pad>" 0, "</s>" 1, "<unk>" 2, then
// "▁", single characters (ASCII letters, digits, punctuation) with and without a leading "▁",
// and "▁word" pieces for a built-in list of common prompt words, scored so that whole words win;
// the normalizer is the identity. transformers (T5Tokenizer / T5TokenizerFast, which add the 100
// "<extra_id_N>" tokens after the pieces) and T5Tokenizer::from_file load it. Throws Error(kIo)
// if a file cannot be written.
void write_tiny_t5_tokenizer(const std::string& dir);

// Number of ids of the tiny tokenizer, the 100 extra ids included (a tiny encoder's vocab_size).
int tiny_t5_vocab_size();

}  // namespace df::engine

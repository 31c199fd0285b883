// A tiny CLIP tokenizer (real file layout, ~1000 tokens) generated locally for test models.
#pragma once

#include <string>

namespace df::engine {

// Writes vocab.json, merges.txt, special_tokens_map.json and tokenizer_config.json into `dir`
// (created if missing) in the layout of the CLIP tokenizer, scaled down: ids 0-255 are the byte
// characters, 256-511 the same with "</w>", then one id per merge learned by byte-pair-encoding
// training on a built-in corpus of common prompt words, then "<|startoftext|>" and
// "<|endoftext|>" as the last two ids. `pad_token` is "<|endoftext|>" (SD1 style) or "!" (the
// OpenCLIP style of SD2 and SDXL's second tokenizer). Throws Error(kIo) if a file cannot be
// written.
void write_tiny_clip_tokenizer(const std::string& dir, const std::string& pad_token);

// Number of ids in the tiny vocabulary (the end-of-text id is this minus one).
int tiny_clip_vocab_size();

}  // namespace df::engine

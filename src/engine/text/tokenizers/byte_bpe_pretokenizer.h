// Qwen2's pre-tokenizer split (the Split regex of Qwen2/Qwen3 tokenizer.json files), without a regex engine.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace df::engine {

// The Split pattern of Qwen2's tokenizer.json, as the file spells it. ByteBpeTokenizer accepts a
// file only when its pre-tokenizer splits with exactly this pattern.
extern const std::string_view kQwen2SplitPattern;

// Splits NFC-normalised text as the Qwen2 pattern does, leftmost-first over its alternatives:
//   1. an apostrophe contraction 's 't 're 've 'm 'll 'd (any letter case);
//   2. a run of letters, optionally after one character that is no CR/LF, letter or number;
//   3. one number character;
//   4. an optional space, a run of characters that are no whitespace, letter or number, then any
//      CR/LF run;
//   5. whitespace up to and including its last CR/LF;
//   6. whitespace not followed by a non-space character (a run before text keeps its last space
//      for the next piece);
//   7. any whitespace run.
// Letters are Unicode category L*, numbers N*, whitespace the White_Space property. The pieces
// cover the text exactly. Throws Error(kInvalidArgument) for text that is not UTF-8.
std::vector<std::string> qwen2_pre_tokenize(std::u32string_view text);

}  // namespace df::engine

// ComfyUI prompt weighting: "(text)" / "(text:w)" emphasis and 77-token chunks for CLIP encoders.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "engine/tokenizer.h"

namespace df::engine {

struct WeightedToken {
  int id;
  float weight;
};

// Splits a prompt into (text, weight) segments with ComfyUI's rules: "(text)" multiplies the
// enclosing weight by 1.1 (nesting compounds), "(text:w)" sets weight w (the last ':' inside; if
// what follows is no number the 1.1 rule applies and the text keeps it), "\(" and "\)" are
// literal parentheses, square brackets are plain text, unbalanced parentheses stay as text.
// Throws Error(kInvalidArgument) for a weight that is not a finite float (e.g. "(x:nan)",
// "(x:1e39)") or nesting deeper than 100.
std::vector<std::pair<std::string, float>> parse_prompt_weights(const std::string& prompt);

// Tokenizes a prompt as ComfyUI's CLIPTextEncode does (sd1_clip.SDTokenizer): each weighted
// segment is tokenized whole (BPE ids without BOS/EOS), except that it is first cut before every
// "embedding:" that follows whitespace. A piece "embedding:<name> ..." names a textual-inversion
// embedding; this engine has none, so, as in ComfyUI with no such file, the name is dropped and
// the text after it is tokenized. The token groups are packed into chunks of BOS + up to 75 tokens
// + EOS + padding (each exactly 77 long): a group that does not fit moves to the next chunk,
// unless it has 8 or more tokens: then it fills the chunk and continues in the next. BOS, EOS and
// padding have weight 1. An empty prompt gives one chunk [BOS, EOS, pad...]. Throws
// Error(kInvalidArgument) for bad weights (see parse_prompt_weights), text that is not UTF-8, or
// "embedding:" with no name after it (ComfyUI fails there too).
std::vector<std::vector<WeightedToken>> tokenize_weighted(const ClipTokenizer& tokenizer,
                                                          const std::string& prompt);

// True if any token of the chunks has a weight other than 1.
bool has_non_unit_weights(const std::vector<std::vector<WeightedToken>>& chunks);

}  // namespace df::engine

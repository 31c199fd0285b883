// ComfyUI prompt weighting: "(text)" / "(text:w)" emphasis and 77-token chunks for CLIP encoders.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/tokenizer.h"

namespace df::engine {

// One position of a CLIP input: a token id, or (embedding >= 0) vector `embedding_row` of the
// textual-inversion embedding the lookup numbered `embedding`; its id is then kNoToken.
struct WeightedToken {
  static constexpr int kNoToken = -1;
  int id;
  float weight;
  int embedding = -1;
  int embedding_row = 0;
};

// What a prompt's "embedding:NAME" finds: a number the caller chooses to tell its embeddings
// apart (WeightedToken::embedding) and how many vectors (tokens) the embedding has.
struct EmbeddingSlots {
  int index;
  int vectors;
};
// Looks a textual-inversion embedding up by the name a prompt gives; nullopt when none exists.
using EmbeddingLookup = std::function<std::optional<EmbeddingSlots>(const std::string& name)>;

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
// embedding: the name is the first whitespace-separated word (newlines around it trimmed), cut
// before a '<' or '['. `embeddings` finds it (tried again with commas stripped from both ends;
// then as many of the name's last characters as commas were stripped stay text), and each of its
// vectors becomes one position with the segment's weight; a name `embeddings` does not find (or
// any name, when `embeddings` is empty) logs "warning, embedding:<name> does not exist, ignoring"
// and is dropped. The text after the name is tokenized. The token groups (a piece's tokens, an
// embedding's vectors) are packed into chunks of BOS + up to 75 positions + EOS + padding (each
// exactly 77 long): a group that does not fit moves to the next chunk, unless it has 8 or more
// positions: then it fills the chunk and continues in the next. BOS, EOS and padding have weight
// 1. An empty prompt gives one chunk [BOS, EOS, pad...]. Throws Error(kInvalidArgument) for bad
// weights (see parse_prompt_weights), text that is not UTF-8, or "embedding:" with no name after
// it (ComfyUI fails there too).
std::vector<std::vector<WeightedToken>> tokenize_weighted(const ClipTokenizer& tokenizer,
                                                          const std::string& prompt,
                                                          const EmbeddingLookup& embeddings = {});

// True if any token of the chunks has a weight other than 1.
bool has_non_unit_weights(const std::vector<std::vector<WeightedToken>>& chunks);

}  // namespace df::engine

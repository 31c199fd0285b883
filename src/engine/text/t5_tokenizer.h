// T5's SentencePiece unigram tokenizer, and ComfyUI's weighted T5 tokenization (FLUX.1, SD3).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace df::engine {

// Encodes like transformers' T5TokenizerFast / T5Tokenizer on the same files (without the EOS
// they append): special tokens ("</s>", "<pad>", "<unk>", "<extra_id_N>") are cut out of the raw
// text first; each piece between them is normalized by the model's precompiled character map
// (NFKC-like; the sentencepiece library), its whitespace trimmed and collapsed, and each word
// ("▁" + text) split into pieces by unigram Viterbi as Hugging Face tokenizers computes it (scores
// summed in double precision per word, runs of unknown characters fused into one "<unk>"), which
// on near-ties such as "!!!!!!!" picks other pieces than sentencepiece's own encoder would.
// Thread-safe; copies share one model.
class T5Tokenizer {
 public:
  // What text ending in whitespace gives. transformers 5 (T5TokenizerFast and T5Tokenizer alike)
  // drops the whitespace; the tokenizer.json pipeline itself (Hugging Face tokenizers, which
  // transformers 4's T5TokenizerFast runs, and so ComfyUI with transformers 4) ends it with a "▁"
  // piece (id 3 in T5), e.g. "a cat " -> ▁a ▁cat ▁, and " " -> ▁. Only trailing whitespace differs.
  enum class TrailingSpace { kDropped, kPiece };

  // Reads spiece.model (a SentencePiece ModelProto), a tokenizer.json with a Unigram model, or a
  // folder holding either (spiece.model preferred). A spiece.model gets the 100 "<extra_id_N>"
  // tokens after its pieces, numbered downwards, as transformers adds them. Throws
  // Error(kModelNotFound) for a missing path, Error(kCorruptFile) for an unreadable or broken
  // file, Error(kUnsupported) for a tokenizer.json of another kind; each names the path.
  static T5Tokenizer from_file(const std::string& path,
                               TrailingSpace trailing_space = TrailingSpace::kDropped);

  // Token ids of `text`, without EOS. Throws Error(kInvalidArgument) for text that is not UTF-8.
  std::vector<int32_t> encode(const std::string& text) const;

  int pad_id() const;
  int eos_id() const;
  int unk_id() const;
  // Number of ids, the added special tokens included (32100 for T5's own tokenizer).
  size_t vocab_size() const;

 private:
  struct Model;
  explicit T5Tokenizer(std::shared_ptr<const Model> model) : model_(std::move(model)) {}

  std::shared_ptr<const Model> model_;
};

// ComfyUI's minimum T5 input lengths (its T5XXLTokenizer min_length): FLUX.1 pads to 256 tokens,
// SD3/SD3.5 to 77.
inline constexpr int kFluxT5MinLength = 256;
inline constexpr int kSd3T5MinLength = 77;

// One T5 input: ids and the weight of each position (EOS and padding have weight 1).
struct T5WeightedTokens {
  std::vector<int32_t> ids;
  std::vector<float> weights;

  bool has_non_unit_weights() const;
};

// Tokenizes a prompt as ComfyUI's T5XXLTokenizer (sd1_clip.SDTokenizer with T5's settings): the
// prompt is split into weighted segments by parse_prompt_weights ("(text:1.3)", "(text)", "\("),
// each segment is cut before every "embedding:" that follows a space or newline and tokenized
// whole with its weight; T5 has no textual-inversion embeddings, so an "embedding:NAME" word is
// dropped with ComfyUI's warning and the words after it are tokenized. All tokens form one
// sequence (no 77-token chunks), followed by EOS, then padded with the pad id up to `min_length`
// (a longer prompt is not cut). Throws Error(kInvalidArgument) for bad weights or non-UTF-8 text.
T5WeightedTokens t5_weighted_tokens(const T5Tokenizer& tokenizer, const std::string& prompt,
                                    int min_length);

}  // namespace df::engine

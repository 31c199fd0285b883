// SentencePiece unigram models as data: the spiece.model (ModelProto) bytes, and conversion from
// a Hugging Face tokenizer.json.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace df::engine::tokenizers {

// SentencePiece's piece types (the ModelProto enum values).
enum class PieceType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4 };

struct UnigramPiece {
  std::string piece;  // "▁word" style: U+2581 stands for a preceding space
  float score;        // log probability
  PieceType type = PieceType::kNormal;
};

// A unigram model: pieces in id order, and the normalizer's precompiled character map (the
// binary blob of spiece.model's normalizer_spec / tokenizer.json's "Precompiled" normalizer;
// empty leaves text unchanged). Whitespace is always trimmed, collapsed and written as U+2581
// with one in front of the text (T5's settings).
struct UnigramModel {
  std::vector<UnigramPiece> pieces;
  std::string precompiled_charsmap;
  int unk_id = 0;
  int eos_id = -1;
  int pad_id = -1;
};

// The model as a serialized SentencePiece ModelProto: the bytes of a spiece.model file that the
// sentencepiece library (C++ and Python) loads.
std::string serialize_sentencepiece_model(const UnigramModel& model);

// The unigram model of a tokenizer.json ("model": {"type": "Unigram", "vocab": [[piece, score],
// ...], "unk_id"}), with its "Precompiled" normalizer (alone or in a Sequence). Added tokens marked
// special become control pieces (matched by the caller, never inside text); eos and pad are the
// ids of "</s>" and "<pad>" when present. Throws Error(kCorruptFile) naming `path` for a broken
// structure, Error(kUnsupported) for another model type or byte fallback.
UnigramModel unigram_model_from_tokenizer_json(const nlohmann::json& json, const std::string& path);

}  // namespace df::engine::tokenizers

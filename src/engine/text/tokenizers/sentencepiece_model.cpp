// Writes SentencePiece ModelProto bytes (protobuf wire format) and reads unigram tokenizer.json files.
#include "engine/text/tokenizers/sentencepiece_model.h"

#include <cstdint>
#include <cstring>
#include <set>

#include "core/base64.h"
#include "core/error.h"

namespace df::engine::tokenizers {
namespace {

// Protobuf wire types.
constexpr uint32_t kVarint = 0;
constexpr uint32_t kLengthDelimited = 2;
constexpr uint32_t kFixed32 = 5;

// ModelProto / SentencePiece / TrainerSpec / NormalizerSpec field numbers (sentencepiece_model.proto).
constexpr uint32_t kModelPieces = 1, kModelTrainerSpec = 2, kModelNormalizerSpec = 3;
constexpr uint32_t kPieceText = 1, kPieceScore = 2, kPieceType = 3;
constexpr uint32_t kTrainerModelType = 3, kTrainerVocabSize = 4, kTrainerUnkId = 40,
                   kTrainerBosId = 41, kTrainerEosId = 42, kTrainerPadId = 43;
constexpr uint32_t kNormalizerName = 1, kNormalizerCharsmap = 2, kNormalizerDummyPrefix = 3,
                   kNormalizerRemoveExtraSpaces = 4, kNormalizerEscapeSpaces = 5;
constexpr uint64_t kUnigramModelType = 1;

class ProtoWriter {
 public:
  void varint_field(uint32_t field, uint64_t value) {
    key(field, kVarint);
    varint(value);
  }
  // int32 fields: negative values are sign-extended to 64 bits, as protobuf encodes them.
  void int32_field(uint32_t field, int32_t value) {
    varint_field(field, static_cast<uint64_t>(static_cast<int64_t>(value)));
  }
  void float_field(uint32_t field, float value) {
    key(field, kFixed32);
    uint32_t bits = 0;
    std::memcpy(&bits, &value, sizeof bits);
    for (int i = 0; i < 4; ++i) bytes_ += static_cast<char>((bits >> (8 * i)) & 0xFF);
  }
  void bytes_field(uint32_t field, const std::string& value) {
    key(field, kLengthDelimited);
    varint(value.size());
    bytes_ += value;
  }
  const std::string& bytes() const { return bytes_; }

 private:
  void key(uint32_t field, uint32_t wire_type) { varint((uint64_t{field} << 3) | wire_type); }
  void varint(uint64_t value) {
    do {
      const auto low = static_cast<uint8_t>(value & 0x7F);
      value >>= 7;
      bytes_ += static_cast<char>(value != 0 ? (low | 0x80) : low);
    } while (value != 0);
  }

  std::string bytes_;
};

std::string serialize_piece(const UnigramPiece& piece) {
  ProtoWriter w;
  w.bytes_field(kPieceText, piece.piece);
  w.float_field(kPieceScore, piece.score);
  w.varint_field(kPieceType, static_cast<uint64_t>(piece.type));
  return w.bytes();
}

std::string serialize_trainer_spec(const UnigramModel& model) {
  ProtoWriter w;
  w.varint_field(kTrainerModelType, kUnigramModelType);
  w.int32_field(kTrainerVocabSize, static_cast<int32_t>(model.pieces.size()));
  w.int32_field(kTrainerUnkId, model.unk_id);
  w.int32_field(kTrainerBosId, -1);
  w.int32_field(kTrainerEosId, model.eos_id);
  w.int32_field(kTrainerPadId, model.pad_id);
  return w.bytes();
}

std::string serialize_normalizer_spec(const UnigramModel& model) {
  ProtoWriter w;
  w.bytes_field(kNormalizerName, model.precompiled_charsmap.empty() ? "identity" : "nmt_nfkc");
  w.bytes_field(kNormalizerCharsmap, model.precompiled_charsmap);
  w.varint_field(kNormalizerDummyPrefix, 1);
  w.varint_field(kNormalizerRemoveExtraSpaces, 1);
  w.varint_field(kNormalizerEscapeSpaces, 1);
  return w.bytes();
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(ErrorCode::kCorruptFile, "tokenizer file " + path + ": " + what);
}

// The base64 charsmap of a "Precompiled" normalizer, alone or inside a "Sequence"; empty if none.
std::string precompiled_charsmap(const nlohmann::json& normalizer, const std::string& path) {
  if (!normalizer.is_object()) return {};
  const std::string type = normalizer.value("type", "");
  if (type == "Sequence") {
    for (const auto& inner : normalizer.value("normalizers", nlohmann::json::array())) {
      std::string charsmap = precompiled_charsmap(inner, path);
      if (!charsmap.empty()) return charsmap;
    }
    return {};
  }
  if (type != "Precompiled") return {};
  const auto decoded = decode_base64(normalizer.value("precompiled_charsmap", ""));
  if (!decoded) fail(path, "the Precompiled normalizer's charsmap is not base64");
  return std::string(decoded->begin(), decoded->end());
}

// Content and id of every added token marked special.
std::vector<std::pair<std::string, int>> special_added_tokens(const nlohmann::json& json) {
  std::vector<std::pair<std::string, int>> tokens;
  for (const auto& token : json.value("added_tokens", nlohmann::json::array())) {
    if (token.value("special", false) && token.contains("content") && token.contains("id")) {
      tokens.emplace_back(token["content"].get<std::string>(), token["id"].get<int>());
    }
  }
  return tokens;
}

std::vector<UnigramPiece> read_vocab(const nlohmann::json& vocab, const std::string& path) {
  if (!vocab.is_array() || vocab.empty()) fail(path, "model.vocab is not a list of pieces");
  std::vector<UnigramPiece> pieces;
  pieces.reserve(vocab.size());
  std::set<std::string> seen;
  for (const auto& entry : vocab) {
    if (!entry.is_array() || entry.size() != 2 || !entry[0].is_string() || !entry[1].is_number()) {
      fail(path, "model.vocab entries must be [piece, score]");
    }
    UnigramPiece piece{entry[0].get<std::string>(), entry[1].get<float>()};
    if (piece.piece.empty() || !seen.insert(piece.piece).second) {
      fail(path, "model.vocab has an empty or repeated piece '" + piece.piece + "'");
    }
    pieces.push_back(std::move(piece));
  }
  return pieces;
}

}  // namespace

std::string serialize_sentencepiece_model(const UnigramModel& model) {
  ProtoWriter w;
  for (const UnigramPiece& piece : model.pieces) w.bytes_field(kModelPieces, serialize_piece(piece));
  w.bytes_field(kModelTrainerSpec, serialize_trainer_spec(model));
  w.bytes_field(kModelNormalizerSpec, serialize_normalizer_spec(model));
  return w.bytes();
}

UnigramModel unigram_model_from_tokenizer_json(const nlohmann::json& json,
                                               const std::string& path) {
  if (!json.is_object() || !json.contains("model") || !json["model"].is_object()) {
    fail(path, "no \"model\" object");
  }
  const auto& model_json = json["model"];
  if (model_json.value("type", "") != "Unigram") {
    throw Error(ErrorCode::kUnsupported,
                "tokenizer file " + path + " holds no SentencePiece unigram model");
  }
  if (model_json.value("byte_fallback", false)) {
    throw Error(ErrorCode::kUnsupported,
                "tokenizer file " + path + ": unigram byte fallback is not supported");
  }
  UnigramModel model;
  model.pieces = read_vocab(model_json.value("vocab", nlohmann::json()), path);
  const auto size = static_cast<int>(model.pieces.size());
  model.unk_id = model_json.value("unk_id", 0);
  if (model.unk_id < 0 || model.unk_id >= size) fail(path, "model.unk_id is out of range");
  model.pieces[model.unk_id].type = PieceType::kUnknown;
  for (const auto& [content, id] : special_added_tokens(json)) {
    if (id < 0 || id >= size || model.pieces[id].piece != content) {
      fail(path, "added token '" + content + "' does not match the vocabulary");
    }
    if (id != model.unk_id) model.pieces[id].type = PieceType::kControl;
    if (content == "</s>") model.eos_id = id;
    if (content == "<pad>") model.pad_id = id;
  }
  model.precompiled_charsmap = precompiled_charsmap(json.value("normalizer", nlohmann::json()), path);
  return model;
}

}  // namespace df::engine::tokenizers

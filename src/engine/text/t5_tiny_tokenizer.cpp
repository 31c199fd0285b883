// Generates the tiny T5 tokenizer: a hand-scored unigram vocabulary written as spiece.model.
#include "engine/text/t5_tiny_tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <fstream>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/text/tokenizers/sentencepiece_model.h"

namespace df::engine {
namespace {

using tokenizers::PieceType;
using tokenizers::UnigramModel;

constexpr int kExtraIds = 100;
constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space mark
constexpr std::string_view kCharacters =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:;!?'\"()[]{}<>-_/\\&%+*=#@~|$^`";
constexpr std::string_view kWords[] = {
    "a", "an", "the", "of", "in", "on", "with", "and", "at", "by", "for", "from", "to", "is",
    "photo", "picture", "painting", "drawing", "portrait", "landscape", "illustration", "render",
    "cat", "dog", "bird", "horse", "fox", "owl", "fish", "dragon", "robot", "man", "woman",
    "girl", "boy", "child", "person", "people", "face", "eyes", "hair", "hat", "dress", "coat",
    "red", "green", "blue", "yellow", "orange", "purple", "pink", "black", "white", "gray",
    "golden", "silver", "bright", "dark", "light", "soft", "sharp", "detailed", "highly",
    "beautiful", "cute", "old", "young", "small", "big", "tall", "tiny", "huge", "happy",
    "sitting", "standing", "running", "flying", "walking", "wearing", "holding", "looking",
    "forest", "mountain", "mountains", "river", "lake", "sea", "ocean", "beach", "sky", "clouds",
    "sun", "sunset", "sunrise", "moon", "night", "day", "city", "street", "house", "castle",
    "garden", "flowers", "flower", "tree", "trees", "grass", "snow", "rain", "water", "fire",
    "table", "window", "room", "background", "style", "art", "digital", "oil", "canvas",
    "watercolor", "anime", "realistic", "cinematic", "lighting", "quality", "best", "masterpiece",
    "high", "resolution", "4k", "8k", "hdr", "studio", "camera", "lens", "depth", "field",
    "close", "up", "view", "wide", "angle", "shot", "sign", "text", "says", "word", "words"};

void add_piece(UnigramModel& model, std::string piece, float score, PieceType type = PieceType::kNormal) {
  model.pieces.push_back({std::move(piece), score, type});
}

UnigramModel tiny_model() {
  UnigramModel model;
  add_piece(model, "<pad>", 0.0f, PieceType::kControl);
  add_piece(model, "</s>", 0.0f, PieceType::kControl);
  add_piece(model, "<unk>", 0.0f, PieceType::kUnknown);
  model.pad_id = 0;
  model.eos_id = 1;
  model.unk_id = 2;
  add_piece(model, std::string(kSpace), -4.0f);
  // Whole words score far above their spellings, earlier (more common) words slightly higher.
  float word_score = -5.0f;
  for (std::string_view word : kWords) {
    add_piece(model, std::string(kSpace) + std::string(word), word_score);
    word_score -= 0.01f;
  }
  for (char c : kCharacters) {
    if (std::find(std::begin(kWords), std::end(kWords), std::string_view(&c, 1)) == std::end(kWords)) {
      add_piece(model, std::string(kSpace) + c, -9.0f);  // one-letter words are there already
    }
    add_piece(model, std::string(1, c), -10.0f);
  }
  return model;
}

void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  if (!out.flush()) throw Error(ErrorCode::kIo, "cannot write " + path.string());
}

nlohmann::json special_tokens_map() {
  nlohmann::json extra = nlohmann::json::array();
  for (int n = 0; n < kExtraIds; ++n) extra.push_back("<extra_id_" + std::to_string(n) + ">");
  return {{"eos_token", "</s>"},
          {"unk_token", "<unk>"},
          {"pad_token", "<pad>"},
          {"additional_special_tokens", extra}};
}

}  // namespace

void write_tiny_t5_tokenizer(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(ErrorCode::kIo, "cannot create " + dir + ": " + ec.message());
  write_file(fs::path(dir) / "spiece.model", tokenizers::serialize_sentencepiece_model(tiny_model()));
  nlohmann::json config = special_tokens_map();
  config["tokenizer_class"] = "T5Tokenizer";
  config["extra_ids"] = kExtraIds;
  config["model_max_length"] = 512;
  write_file(fs::path(dir) / "tokenizer_config.json", config.dump(2));
  write_file(fs::path(dir) / "special_tokens_map.json", special_tokens_map().dump(2));
}

int tiny_t5_vocab_size() { return static_cast<int>(tiny_model().pieces.size()) + kExtraIds; }

}  // namespace df::engine

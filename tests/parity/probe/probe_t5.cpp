// Probe commands for the T5 tokenizer, ComfyUI's weighted T5 tokens, the T5 encoder and its layout.
#include <fstream>
#include <string>
#include <vector>

#include "engine/safetensors.h"
#include "engine/text/t5_config.h"
#include "engine/text/t5_encoder.h"
#include "engine/text/t5_tiny_tokenizer.h"
#include "engine/text/t5_tokenizer.h"
#include "probe.h"

namespace df::probe {
namespace {

using engine::T5Tokenizer;
using engine::TensorMap;
using nlohmann::json;

// Rows of different lengths as one int64 [rows, longest] tensor padded with -1, plus "lengths".
TensorMap ragged_rows(const std::vector<std::vector<int32_t>>& rows) {
  size_t longest = 1;
  for (const auto& row : rows) longest = std::max(longest, row.size());
  auto ids = at::full({static_cast<int64_t>(rows.size()), static_cast<int64_t>(longest)}, -1, at::kLong);
  auto lengths = at::empty({static_cast<int64_t>(rows.size())}, at::kLong);
  for (size_t r = 0; r < rows.size(); ++r) {
    lengths[r] = static_cast<int64_t>(rows[r].size());
    for (size_t c = 0; c < rows[r].size(); ++c) ids[r][c] = rows[r][c];
  }
  return {{"ids", ids}, {"lengths", lengths}};
}

// args "tokenizer", optional "trailing_space": "piece" (the tokenizer.json pipeline's handling).
T5Tokenizer load_tokenizer(const json& args) {
  const auto trailing_space = args.value("trailing_space", "dropped") == "piece"
                                  ? T5Tokenizer::TrailingSpace::kPiece
                                  : T5Tokenizer::TrailingSpace::kDropped;
  return T5Tokenizer::from_file(args.at("tokenizer").get<std::string>(), trailing_space);
}

// args {"tokenizer": file or folder, "prompts": [...]} -> "ids" [P, longest] (-1 padded),
// "lengths" [P], "special" [pad, eos, unk, vocab_size].
TensorMap tokenize(const json& args, const TensorMap&) {
  const auto tokenizer = load_tokenizer(args);
  std::vector<std::vector<int32_t>> rows;
  for (const auto& prompt : args.at("prompts")) rows.push_back(tokenizer.encode(prompt.get<std::string>()));
  TensorMap out = ragged_rows(rows);
  out["special"] = at::tensor(std::vector<int64_t>{tokenizer.pad_id(), tokenizer.eos_id(),
                                                   tokenizer.unk_id(),
                                                   static_cast<int64_t>(tokenizer.vocab_size())});
  return out;
}

// args {"tokenizer", "prompts", "min_length"} -> "ids" (-1 padded), "lengths", "weights" float32.
TensorMap weighted_tokens(const json& args, const TensorMap&) {
  const auto tokenizer = load_tokenizer(args);
  std::vector<std::vector<int32_t>> rows;
  std::vector<std::vector<float>> weights;
  for (const auto& prompt : args.at("prompts")) {
    auto tokens = engine::t5_weighted_tokens(tokenizer, prompt.get<std::string>(),
                                             args.at("min_length").get<int>());
    rows.push_back(std::move(tokens.ids));
    weights.push_back(std::move(tokens.weights));
  }
  TensorMap out = ragged_rows(rows);
  auto weight_rows = at::zeros(out["ids"].sizes(), at::kFloat);
  for (size_t r = 0; r < weights.size(); ++r) {
    for (size_t c = 0; c < weights[r].size(); ++c) weight_rows[r][c] = weights[r][c];
  }
  out["weights"] = weight_rows;
  return out;
}

// args {"weights": safetensors file} + inputs "ids" [B, L], optional "mask" -> "hidden".
TensorMap encode(const json& args, const TensorMap& in) {
  const auto encoder = engine::load_t5_encoder(args.at("weights").get<std::string>(), at::kFloat);
  const auto mask = in.find("mask");
  return {{"hidden", encoder.forward(in.at("ids"), mask == in.end() ? at::Tensor() : mask->second)}};
}

// args {"weights", "tokenizer", "prompt", "min_length", "attention_mask"} -> "hidden" [1, L, D],
// "ids", "weights".
TensorMap encode_weighted(const json& args, const TensorMap&) {
  const auto encoder = engine::load_t5_encoder(args.at("weights").get<std::string>(), at::kFloat);
  const auto tokens = engine::t5_weighted_tokens(load_tokenizer(args), args.at("prompt").get<std::string>(),
                                                 args.at("min_length").get<int>());
  return {{"hidden", engine::encode_weighted(encoder, tokens, args.value("attention_mask", false))},
          {"ids", at::tensor(std::vector<int64_t>(tokens.ids.begin(), tokens.ids.end()))},
          {"weights", at::tensor(tokens.weights)}};
}

// args {"config": config.json object or absent (T5-XXL), "tiny_vocab": n (tiny_t5_config),
// optional "config_out": path} -> one int64 tensor per layout entry holding its shape (a T5-XXL
// of zeros would be 4.7 GB on disk); writes the config's to_json() to "config_out".
TensorMap layout(const json& args, const TensorMap&) {
  const engine::T5Config config = args.contains("tiny_vocab")
                                      ? engine::tiny_t5_config(args["tiny_vocab"].get<int64_t>())
                                      : engine::T5Config::from_json(args.value("config", json::object()));
  if (args.contains("config_out")) {
    std::ofstream(args["config_out"].get<std::string>()) << config.to_json().dump(2);
  }
  TensorMap out;
  for (const auto& tensor : engine::t5_encoder_layout(config)) {
    out[tensor.name] = at::tensor(std::vector<int64_t>(tensor.shape.begin(), tensor.shape.end()));
  }
  return out;
}

// args {"dir"} -> no tensors; writes the tiny T5 tokenizer into "dir".
TensorMap write_tiny_tokenizer(const json& args, const TensorMap&) {
  engine::write_tiny_t5_tokenizer(args.at("dir").get<std::string>());
  return {{"vocab_size", at::tensor(std::vector<int64_t>{engine::tiny_t5_vocab_size()})}};
}

DF_PROBE_COMMAND("t5_tokenize", tokenize);
DF_PROBE_COMMAND("t5_weighted_tokens", weighted_tokens);
DF_PROBE_COMMAND("t5_encode", encode);
DF_PROBE_COMMAND("t5_encode_weighted", encode_weighted);
DF_PROBE_COMMAND("t5_layout", layout);
DF_PROBE_COMMAND("t5_write_tiny_tokenizer", write_tiny_tokenizer);

}  // namespace
}  // namespace df::probe

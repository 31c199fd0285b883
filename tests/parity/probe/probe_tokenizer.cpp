// Probe commands for the CLIP tokenizer, ComfyUI prompt weighting and the tiny tokenizer writer.
#include <string>
#include <vector>

#include "engine/prompt_weights.h"
#include "engine/tiny_tokenizer.h"
#include "engine/tokenizer.h"
#include "probe.h"

namespace df::probe {
namespace {

using engine::ClipTokenizer;
using engine::TensorMap;
using nlohmann::json;

// The tokenizer of args "tokenizer_dir", padding with args "pad_token" when given.
ClipTokenizer load_tokenizer(const json& args) {
  return ClipTokenizer::load(args.at("tokenizer_dir").get<std::string>(),
                             args.value("pad_token", std::string()));
}

at::Tensor id_rows(const std::vector<std::vector<int>>& rows) {
  auto ids = at::empty({static_cast<int64_t>(rows.size()), ClipTokenizer::kMaxLength}, at::kLong);
  auto view = ids.accessor<int64_t, 2>();
  for (size_t r = 0; r < rows.size(); ++r) {
    for (int c = 0; c < ClipTokenizer::kMaxLength; ++c) view[r][c] = rows[r][c];
  }
  return ids;
}

// args {"tokenizer_dir", "prompts": [...], optional "pad_token"} -> "ids" int64 [prompts, 77].
TensorMap tokenize(const json& args, const TensorMap&) {
  const auto tokenizer = load_tokenizer(args);
  std::vector<std::vector<int>> rows;
  for (const auto& prompt : args.at("prompts"))
    rows.push_back(tokenizer.encode(prompt.get<std::string>()));
  return {{"ids", id_rows(rows)}};
}

// args {"tokenizer_dir", "prompt", optional "pad_token"} -> "ids" int64 [chunks, 77], "weights"
// float32 [chunks, 77].
TensorMap tokenize_weighted(const json& args, const TensorMap&) {
  const auto tokenizer = load_tokenizer(args);
  const auto chunks = engine::tokenize_weighted(tokenizer, args.at("prompt").get<std::string>());
  std::vector<std::vector<int>> rows;
  auto weights =
      at::empty({static_cast<int64_t>(chunks.size()), ClipTokenizer::kMaxLength}, at::kFloat);
  auto weight_view = weights.accessor<float, 2>();
  for (size_t r = 0; r < chunks.size(); ++r) {
    rows.emplace_back();
    for (int c = 0; c < ClipTokenizer::kMaxLength; ++c) {
      rows.back().push_back(chunks[r][c].id);
      weight_view[r][c] = chunks[r][c].weight;
    }
  }
  return {{"ids", id_rows(rows)}, {"weights", weights}};
}

// args {"dir", "pad_token"} -> no tensors; writes the tiny tokenizer files into "dir".
TensorMap write_tiny_tokenizer(const json& args, const TensorMap&) {
  engine::write_tiny_clip_tokenizer(args.at("dir").get<std::string>(),
                                    args.at("pad_token").get<std::string>());
  return {};
}

DF_PROBE_COMMAND("tokenize", tokenize);
DF_PROBE_COMMAND("tokenize_weighted", tokenize_weighted);
DF_PROBE_COMMAND("write_tiny_tokenizer", write_tiny_tokenizer);

}  // namespace
}  // namespace df::probe

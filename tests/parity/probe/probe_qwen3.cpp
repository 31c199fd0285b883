// Probe commands for the Qwen3 text encoder, its byte-level BPE tokenizer and Z-Image's prompt path.
#include <string>
#include <vector>

#include "engine/text/qwen3_config.h"
#include "engine/text/qwen3_encoder.h"
#include "engine/text/qwen3_zimage_prompt.h"
#include "engine/text/tokenizers/byte_bpe_tiny.h"
#include "engine/text/tokenizers/byte_bpe_tokenizer.h"
#include "probe.h"

namespace df::probe {
namespace {

using engine::ByteBpeTokenizer;
using engine::TensorMap;
using nlohmann::json;

at::Tensor as_tensor(const std::vector<int32_t>& ids) {
  return at::tensor(at::ArrayRef<int32_t>(ids), at::kInt).to(at::kLong);
}

// args {"tokenizer_file", "prompts": [...], optional "zimage": true (chat-template the prompts)}
// -> "ids_<i>" int64 [tokens] per prompt.
TensorMap qwen3_tokenize(const json& args, const TensorMap&) {
  const auto tokenizer = ByteBpeTokenizer::from_file(args.at("tokenizer_file").get<std::string>());
  const bool zimage = args.value("zimage", false);
  TensorMap out;
  const auto& prompts = args.at("prompts");
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::string prompt = prompts[i].get<std::string>();
    const auto ids = zimage ? engine::zimage_prompt_ids(tokenizer, prompt) : tokenizer.encode(prompt);
    out.emplace("ids_" + std::to_string(i), as_tensor(ids));
  }
  out.emplace("vocab_size", at::tensor(static_cast<int64_t>(tokenizer.vocab_size())));
  return out;
}

// args {"dir"} -> no tensors; writes the tiny Qwen tokenizer files into "dir".
TensorMap qwen3_write_tiny_tokenizer(const json& args, const TensorMap&) {
  engine::write_tiny_qwen_tokenizer(args.at("dir").get<std::string>());
  return {};
}

// args {"config": transformers config dict} -> one empty tensor per qwen3_layout entry.
TensorMap qwen3_layout(const json& args, const TensorMap&) {
  TensorMap out;
  for (const auto& tensor : engine::qwen3_layout(engine::Qwen3Config::from_json(args.at("config")))) {
    out.emplace(tensor.name, at::zeros(tensor.shape, at::kFloat));
  }
  return out;
}

// args {"weights": safetensors path, "layers": [...]}, inputs "ids" [B, L], "mask" [B, L]
// -> "layer_<k>" [B, L, hidden] per requested hidden_states index.
TensorMap qwen3_hidden_states(const json& args, const TensorMap& in) {
  const auto encoder = engine::Qwen3Encoder::load(args.at("weights").get<std::string>(), at::kFloat);
  TensorMap out;
  for (const auto& layer : args.at("layers")) {
    const int index = layer.get<int>();
    out.emplace("layer_" + std::to_string(index),
                encoder.hidden_states(in.at("ids"), in.at("mask"), index));
  }
  return out;
}

// args {"tokenizer_file", "weights", "prompts": [...]} -> "states_<i>" [1, L, hidden] and
// "mask_<i>" [1, L] per prompt.
TensorMap zimage_encode(const json& args, const TensorMap&) {
  const auto tokenizer = ByteBpeTokenizer::from_file(args.at("tokenizer_file").get<std::string>());
  const auto encoder = engine::Qwen3Encoder::load(args.at("weights").get<std::string>(), at::kFloat);
  TensorMap out;
  const auto& prompts = args.at("prompts");
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto encoding = engine::encode_zimage_prompt(tokenizer, encoder, prompts[i].get<std::string>());
    out.emplace("states_" + std::to_string(i), encoding.states);
    out.emplace("mask_" + std::to_string(i), encoding.attention_mask);
  }
  return out;
}

DF_PROBE_COMMAND("qwen3_tokenize", qwen3_tokenize);
DF_PROBE_COMMAND("qwen3_write_tiny_tokenizer", qwen3_write_tiny_tokenizer);
DF_PROBE_COMMAND("qwen3_layout", qwen3_layout);
DF_PROBE_COMMAND("qwen3_hidden_states", qwen3_hidden_states);
DF_PROBE_COMMAND("zimage_encode", zimage_encode);

}  // namespace
}  // namespace df::probe

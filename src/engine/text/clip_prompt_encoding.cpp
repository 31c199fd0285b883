// CLIP text encoders of split files and ComfyUI's weighted encoding of a prompt by one of them.
#include "engine/text/clip_prompt_encoding.h"

#include <filesystem>

#include "core/error.h"
#include "engine/component_loaders.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

// NAME.tokenizer/ beside NAME.safetensors when it holds a vocabulary, else `clip_vocab_dir`.
std::string vocabulary_dir(const std::string& path, const std::string& clip_vocab_dir) {
  const fs::path weights(path);
  const fs::path beside = weights.parent_path() / (weights.stem().string() + ".tokenizer");
  std::error_code ec;
  return fs::is_regular_file(beside / "vocab.json", ec) ? beside.string() : clip_vocab_dir;
}

at::Tensor token_ids(const std::vector<std::vector<WeightedToken>>& chunks) {
  at::Tensor ids = at::empty({static_cast<int64_t>(chunks.size()), ClipTokenizer::kMaxLength}, at::kLong);
  auto acc = ids.accessor<int64_t, 2>();
  for (size_t r = 0; r < chunks.size(); ++r) {
    for (size_t c = 0; c < chunks[r].size(); ++c) acc[r][c] = chunks[r][c].id;
  }
  return ids;
}

at::Tensor token_weights(const std::vector<std::vector<WeightedToken>>& chunks) {
  at::Tensor weights = at::empty({static_cast<int64_t>(chunks.size()), ClipTokenizer::kMaxLength, 1});
  auto acc = weights.accessor<float, 3>();
  for (size_t r = 0; r < chunks.size(); ++r) {
    for (size_t c = 0; c < chunks[r].size(); ++c) acc[r][c][0] = chunks[r][c].weight;
  }
  return weights;
}

const at::Tensor& hidden_at(const ClipTextOutput& output, int hidden_layer) {
  const int count = static_cast<int>(output.hidden_states.size());
  if (hidden_layer >= 0 || -hidden_layer >= count) {
    throw Error(ErrorCode::kInvalidArgument,
                "CLIP hidden layer " + std::to_string(hidden_layer) + " does not exist (-1 to -" +
                    std::to_string(count - 1) + ")");
  }
  return output.hidden_states[static_cast<size_t>(count + hidden_layer)];
}

}  // namespace

TextEncoder load_clip_text_encoder(const std::string& path, const std::string& clip_vocab_dir,
                                   const std::string& device, const std::string& dtype) {
  TextEncoderLoadRequest request;
  request.paths = {path};
  request.type = "stable_diffusion";
  request.device = device;
  request.dtype = dtype;
  request.clip_vocab_dir = vocabulary_dir(path, clip_vocab_dir);
  return load_text_conditioner(request)->encoders().front();
}

ClipPromptEncoding encode_clip_prompt(const TextEncoder& encoder, const std::string& prompt,
                                      int hidden_layer) {
  at::InferenceMode guard;
  std::vector<std::vector<WeightedToken>> chunks = tokenize_weighted(encoder.tokenizer, prompt);
  const auto sections = static_cast<int64_t>(chunks.size());
  const bool weighted = has_non_unit_weights(chunks);
  const at::Tensor weights = token_weights(chunks);
  if (weighted) chunks.push_back(tokenize_weighted(encoder.tokenizer, "").front());

  const at::Device device = encoder.model.weights().get("embeddings.token_embedding.weight").device();
  const ClipTextOutput output =
      encoder.model.forward(token_ids(chunks).to(device), encoder.tokenizer.eos_id());
  const at::Tensor states = hidden_at(output, hidden_layer).to(at::kFloat);
  at::Tensor hidden = states.narrow(0, 0, sections);
  if (weighted) {
    const at::Tensor empty = states.narrow(0, sections, 1);
    hidden = (hidden - empty) * weights.to(hidden.device()) + empty;
  }
  return {hidden.reshape({1, -1, hidden.size(-1)}), output.pooled.narrow(0, 0, 1).to(at::kFloat)};
}

}  // namespace df::engine

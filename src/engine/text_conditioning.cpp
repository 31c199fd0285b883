// TextConditioner: tokenization, encoder layer choice per family, ComfyUI-style token weights.
#include "engine/text_conditioning.h"

#include <algorithm>

#include "core/error.h"

namespace df::engine {
namespace {

at::Tensor chunk_ids(const std::vector<std::vector<WeightedToken>>& chunks) {
  const int64_t rows = static_cast<int64_t>(chunks.size());
  const int64_t cols = static_cast<int64_t>(chunks.front().size());
  at::Tensor ids = at::empty({rows, cols}, at::kLong);
  auto acc = ids.accessor<int64_t, 2>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) acc[r][c] = chunks[r][c].id;
  }
  return ids;
}

at::Tensor chunk_weights(const std::vector<std::vector<WeightedToken>>& chunks) {
  const int64_t rows = static_cast<int64_t>(chunks.size());
  const int64_t cols = static_cast<int64_t>(chunks.front().size());
  at::Tensor weights = at::empty({rows, cols, 1}, at::kFloat);
  auto acc = weights.accessor<float, 3>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) acc[r][c][0] = chunks[r][c].weight;
  }
  return weights;
}

}  // namespace

TextConditioner::TextConditioner(Family family, std::vector<TextEncoder> encoders,
                                 at::Device device)
    : family_(family), encoders_(std::move(encoders)), device_(device) {
  const size_t expected = family == Family::kSDXL ? 2 : 1;
  if (encoders_.size() != expected) {
    throw Error(ErrorCode::kCorruptFile, "model has " + std::to_string(encoders_.size()) +
                                             " text encoders, its family needs " +
                                             std::to_string(expected));
  }
}

std::vector<std::vector<WeightedToken>> TextConditioner::tokenize(const std::string& prompt,
                                                                  size_t encoder) const {
  return tokenize_weighted(encoders_.at(encoder).tokenizer, prompt);
}

// ComfyUI's layer choice: SD1 and SD2 take a layer's output through the final LayerNorm, SDXL's
// encoders take it as is; the default is the last layer for SD1 and the penultimate otherwise.
// SD2's encoder is stored without its original last layer, so its layers are counted one higher.
at::Tensor TextConditioner::select_hidden(const TextEncoder& encoder,
                                          const ClipTextOutput& output) const {
  const bool sd = family_ == Family::kSD1 || family_ == Family::kSD2;
  const int stored_layers = static_cast<int>(output.hidden_states.size()) - 1;
  const int original_layers = stored_layers + (family_ == Family::kSD2 ? 1 : 0);
  int stop = stop_at_clip_layer_ != 0 ? stop_at_clip_layer_ : (family_ == Family::kSD1 ? -1 : -2);
  if (-stop > original_layers) stop = -1;  // ComfyUI: beyond the first layer means the last
  const int applied = std::min(original_layers + 1 + stop, stored_layers);
  const at::Tensor& hidden = output.hidden_states.at(static_cast<size_t>(applied));
  return sd ? encoder.model.final_layer_norm(hidden) : hidden;
}

TextConditioner TextConditioner::with_last_layer(int stop_at_clip_layer) const {
  if (stop_at_clip_layer > 0) {
    throw Error(ErrorCode::kInvalidArgument, "stop_at_clip_layer must be negative (-1 is the last layer)");
  }
  TextConditioner copy = *this;
  copy.stop_at_clip_layer_ = stop_at_clip_layer;
  return copy;
}

TextConditioner TextConditioner::with_encoder_weights(const std::vector<Weights>& weights) const {
  if (weights.size() != encoders_.size()) {
    throw Error(ErrorCode::kInternal, "patched weights for " + std::to_string(weights.size()) +
                                          " text encoders, the model has " +
                                          std::to_string(encoders_.size()));
  }
  TextConditioner copy = *this;
  for (size_t i = 0; i < weights.size(); ++i) {
    copy.encoders_[i].model = ClipTextModel(encoders_[i].model.config(), weights[i]);
  }
  return copy;
}

TextConditioner::EncodedChunks TextConditioner::encode_chunks(
    const TextEncoder& encoder, std::vector<std::vector<WeightedToken>> chunks) const {
  const int64_t sections = static_cast<int64_t>(chunks.size());
  const bool weighted = has_non_unit_weights(chunks);
  at::Tensor weights = chunk_weights(chunks);
  if (weighted) chunks.push_back(tokenize_weighted(encoder.tokenizer, "").front());

  ClipTextOutput out =
      encoder.model.forward(chunk_ids(chunks).to(device_), encoder.tokenizer.eos_id());
  at::Tensor hidden = select_hidden(encoder, out).narrow(0, 0, sections);
  if (weighted) {
    at::Tensor empty = select_hidden(encoder, out).narrow(0, sections, 1);
    at::Tensor w = weights.to(device_, hidden.scalar_type());
    hidden = (hidden - empty) * w + empty;
  }
  at::Tensor pooled = out.pooled.defined() ? out.pooled.narrow(0, 0, 1) : at::Tensor();
  return {hidden, pooled};
}

Conditioning TextConditioner::encode(const std::string& prompt) const {
  return encode_each(std::vector<std::string>(encoders_.size(), prompt));
}

Conditioning TextConditioner::encode_sdxl(const std::string& text_l, const std::string& text_g) const {
  if (encoders_.size() != 2) {
    throw Error(ErrorCode::kInvalidArgument,
                "separate CLIP-L and CLIP-G prompts need an SDXL CLIP (this one has " +
                    std::to_string(encoders_.size()) + " text encoder)");
  }
  return encode_each({text_l, text_g});
}

Conditioning TextConditioner::encode_each(const std::vector<std::string>& prompts) const {
  at::InferenceMode guard;
  std::vector<std::vector<std::vector<WeightedToken>>> chunks;
  size_t most = 0;
  for (size_t i = 0; i < encoders_.size(); ++i) {
    chunks.push_back(tokenize_weighted(encoders_[i].tokenizer, prompts.at(i)));
    most = std::max(most, chunks.back().size());
  }
  // ComfyUI pads the encoder with fewer chunks with empty ones, so the contexts line up.
  for (size_t i = 0; i < encoders_.size(); ++i) {
    while (chunks[i].size() < most) {
      chunks[i].push_back(tokenize_weighted(encoders_[i].tokenizer, "").front());
    }
  }
  std::vector<at::Tensor> parts;
  at::Tensor pooled;
  for (size_t i = 0; i < encoders_.size(); ++i) {
    EncodedChunks encoded = encode_chunks(encoders_[i], std::move(chunks[i]));
    parts.push_back(encoded.hidden.reshape({1, -1, encoded.hidden.size(-1)}));
    pooled = encoded.pooled;  // SDXL: the pooled embedding comes from the last (bigG) encoder
  }
  Conditioning cond;
  cond.context = parts.size() == 1 ? parts[0] : at::cat(parts, -1);
  if (family_ == Family::kSDXL || family_ == Family::kSDXLRefiner) cond.pooled = pooled;
  return cond;
}

}  // namespace df::engine

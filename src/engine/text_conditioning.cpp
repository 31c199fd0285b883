// TextConditioner: tokenization, encoder layer choice per family, ComfyUI-style token weights.
#include "engine/text_conditioning.h"

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

at::Tensor TextConditioner::select_hidden(const ClipTextOutput& output) const {
  switch (family_) {
    case Family::kSD1:
    case Family::kSD2:
      // SD2's encoder is stored without its last layer, so "last + final norm" is the penultimate.
      return output.last_hidden_state;
    case Family::kSDXL:
    case Family::kSDXLRefiner:
      return output.hidden_states.at(output.hidden_states.size() - 2);
  }
  return output.last_hidden_state;
}

TextConditioner::EncodedChunks TextConditioner::encode_with(const TextEncoder& encoder,
                                                            const std::string& prompt) const {
  auto chunks = tokenize_weighted(encoder.tokenizer, prompt);
  const int64_t sections = static_cast<int64_t>(chunks.size());
  const bool weighted = has_non_unit_weights(chunks);
  at::Tensor weights = chunk_weights(chunks);
  if (weighted) chunks.push_back(tokenize_weighted(encoder.tokenizer, "").front());

  ClipTextOutput out =
      encoder.model.forward(chunk_ids(chunks).to(device_), encoder.tokenizer.eos_id());
  at::Tensor hidden = select_hidden(out).narrow(0, 0, sections);
  if (weighted) {
    at::Tensor empty = select_hidden(out).narrow(0, sections, 1);
    at::Tensor w = weights.to(device_, hidden.scalar_type());
    hidden = (hidden - empty) * w + empty;
  }
  at::Tensor pooled = out.pooled.defined() ? out.pooled.narrow(0, 0, 1) : at::Tensor();
  return {hidden, pooled};
}

Conditioning TextConditioner::encode(const std::string& prompt) const {
  at::InferenceMode guard;
  std::vector<at::Tensor> parts;
  at::Tensor pooled;
  for (const auto& encoder : encoders_) {
    EncodedChunks encoded = encode_with(encoder, prompt);
    parts.push_back(encoded.hidden.reshape({1, -1, encoded.hidden.size(-1)}));
    pooled = encoded.pooled;  // SDXL: the pooled embedding comes from the last (bigG) encoder
  }
  if (parts.size() > 1) {
    const int64_t length = std::min(parts[0].size(1), parts[1].size(1));
    for (auto& p : parts) p = p.narrow(1, 0, length);
  }
  Conditioning cond;
  cond.context = parts.size() == 1 ? parts[0] : at::cat(parts, -1);
  if (family_ == Family::kSDXL || family_ == Family::kSDXLRefiner) cond.pooled = pooled;
  return cond;
}

}  // namespace df::engine

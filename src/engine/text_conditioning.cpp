// TextConditioner: tokenization, encoder layer choice per family, ComfyUI-style token weights.
#include "engine/text_conditioning.h"

#include <algorithm>
#include <iostream>

#include "core/error.h"
#include "engine/embeddings.h"

namespace df::engine {
namespace {

// Token ids of the chunks; embedding positions get id 0 (any id other than end-of-text would do:
// their vectors replace its embedding).
at::Tensor chunk_ids(const std::vector<std::vector<WeightedToken>>& chunks) {
  const int64_t rows = static_cast<int64_t>(chunks.size());
  const int64_t cols = static_cast<int64_t>(chunks.front().size());
  at::Tensor ids = at::empty({rows, cols}, at::kLong);
  auto acc = ids.accessor<int64_t, 2>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) acc[r][c] = std::max(chunks[r][c].id, 0);
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

// ComfyUI leaves embedding vectors of another width than the encoder's out of the input, with a
// warning, and pads the chunk at its end instead.
using VectorOf = std::function<at::Tensor(const WeightedToken&)>;

std::vector<WeightedToken> drop_unfitting_vectors(const std::vector<WeightedToken>& chunk,
                                                  const VectorOf& vector_of, int64_t width,
                                                  int pad_id) {
  std::vector<WeightedToken> kept;
  for (const WeightedToken& token : chunk) {
    const int64_t size = token.embedding >= 0 ? vector_of(token).size(0) : width;
    if (size == width) {
      kept.push_back(token);
    } else {
      std::cerr << "WARNING: shape mismatch when trying to apply embedding, embedding will be "
                   "ignored "
                << size << " != " << width << '\n';
    }
  }
  kept.resize(chunk.size(), {pad_id, 1.0f});
  return kept;
}

// The embedding vectors at their positions of the chunks (unfitting ones already dropped).
ReplacedTokenEmbeddings replaced_embeddings(const std::vector<std::vector<WeightedToken>>& chunks,
                                            const VectorOf& vector_of, int64_t width) {
  const auto rows = static_cast<int64_t>(chunks.size());
  const auto cols = static_cast<int64_t>(chunks.front().size());
  ReplacedTokenEmbeddings replaced{at::zeros({rows, cols}, at::kBool),
                                   at::zeros({rows, cols, width}, at::kFloat)};
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const WeightedToken& token = chunks[r][c];
      if (token.embedding < 0) continue;
      replaced.positions[r][c] = true;
      replaced.vectors[r][c].copy_(vector_of(token));
    }
  }
  return replaced;
}

}  // namespace

// The embeddings one encoder's prompt names, loaded (its own vectors of each file) as the
// tokenizer asks for them.
class TextConditioner::EmbeddingTable {
 public:
  EmbeddingTable(const EmbeddingFinder& finder, std::string key)
      : finder_(finder), key_(std::move(key)) {}

  EmbeddingLookup lookup() {
    return [this](const std::string& name) -> std::optional<EmbeddingSlots> {
      const auto path = finder_ ? finder_(name) : std::nullopt;
      if (!path) return std::nullopt;
      vectors_.push_back(load_embedding_vectors(*path, key_));
      return EmbeddingSlots{static_cast<int>(vectors_.size() - 1),
                            static_cast<int>(vectors_.back().size(0))};
    };
  }
  at::Tensor vector(const WeightedToken& token) const {
    return vectors_.at(static_cast<size_t>(token.embedding))[token.embedding_row];
  }
  bool empty() const { return vectors_.empty(); }

 private:
  const EmbeddingFinder& finder_;
  std::string key_;
  std::vector<at::Tensor> vectors_;
};

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
  EmbeddingTable embeddings(embedding_finder_, embedding_key(family_, encoder));
  return tokenize_weighted(encoders_.at(encoder).tokenizer, prompt, embeddings.lookup());
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

TextConditioner TextConditioner::with_embeddings(EmbeddingFinder finder) const {
  TextConditioner copy = *this;
  copy.embedding_finder_ = std::move(finder);
  return copy;
}

TextConditioner::EncodedChunks TextConditioner::encode_chunks(
    const TextEncoder& encoder, const EmbeddingTable& embeddings,
    std::vector<std::vector<WeightedToken>> chunks) const {
  const int64_t width = encoder.model.config().hidden_size;
  const auto vector_of = [&](const WeightedToken& token) { return embeddings.vector(token); };
  if (!embeddings.empty()) {
    for (auto& chunk : chunks) {
      chunk = drop_unfitting_vectors(chunk, vector_of, width, encoder.tokenizer.pad_id());
    }
  }
  const int64_t sections = static_cast<int64_t>(chunks.size());
  const bool weighted = has_non_unit_weights(chunks);
  at::Tensor weights = chunk_weights(chunks);
  if (weighted) chunks.push_back(tokenize_weighted(encoder.tokenizer, "").front());
  const ReplacedTokenEmbeddings replaced =
      embeddings.empty() ? ReplacedTokenEmbeddings{} : replaced_embeddings(chunks, vector_of, width);

  ClipTextOutput out = encoder.model.forward(chunk_ids(chunks).to(device_),
                                             encoder.tokenizer.eos_id(), replaced);
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
  std::vector<EmbeddingTable> embeddings;
  embeddings.reserve(encoders_.size());  // lookups point at their table
  size_t most = 0;
  for (size_t i = 0; i < encoders_.size(); ++i) {
    embeddings.emplace_back(embedding_finder_, embedding_key(family_, i));
    chunks.push_back(
        tokenize_weighted(encoders_[i].tokenizer, prompts.at(i), embeddings.back().lookup()));
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
    EncodedChunks encoded = encode_chunks(encoders_[i], embeddings[i], std::move(chunks[i]));
    parts.push_back(encoded.hidden.reshape({1, -1, encoded.hidden.size(-1)}));
    pooled = encoded.pooled;  // SDXL: the pooled embedding comes from the last (bigG) encoder
  }
  Conditioning cond;
  cond.context = parts.size() == 1 ? parts[0] : at::cat(parts, -1);
  if (family_ == Family::kSDXL || family_ == Family::kSDXLRefiner) cond.pooled = pooled;
  return cond;
}

}  // namespace df::engine

// SD3 prompts to conditionings: ComfyUI's SD3ClipModel combination of CLIP-L, CLIP-G and T5-XXL.
#include "engine/family/sd3/sd3_prompt_encoder.h"

#include <algorithm>

#include "core/error.h"
#include "engine/checkpoint_bundle.h"
#include "engine/component_detection.h"
#include "engine/family/dit_text_encoders.h"
#include "engine/prompt_weights.h"
#include "engine/tensor_file.h"
#include "engine/text/clip_prompt_encoding.h"

namespace df::engine::sd3 {

namespace {

constexpr int64_t kChunkTokens = 77;
constexpr int kPenultimateLayer = -2;

int64_t chunk_count(const at::Tensor& context) { return context.size(1) / kChunkTokens; }

// One CLIP's penultimate states and pooled output for `text` (nullopt: no tokens, so only empty
// chunks), with empty chunks appended up to `chunks` (ComfyUI pads the CLIP with fewer chunks
// with empty ones).
ClipPromptEncoding encode_clip(const TextEncoder& clip, const std::optional<std::string>& text,
                               int64_t chunks) {
  ClipPromptEncoding out = encode_clip_prompt(clip, text.value_or(""), kPenultimateLayer);
  if (chunk_count(out.hidden) < chunks) {
    const at::Tensor empty =
        text ? encode_clip_prompt(clip, "", kPenultimateLayer).hidden : out.hidden;
    std::vector<at::Tensor> parts = {out.hidden};
    for (int64_t i = chunk_count(out.hidden); i < chunks; ++i) parts.push_back(empty);
    out.hidden = at::cat(parts, 1);
  }
  return out;
}

// The 77-token chunks `text` fills (0 for no tokens); either CLIP's tokenizer counts them.
int64_t chunks_of(const TextEncoder& clip, const std::optional<std::string>& text) {
  return text ? static_cast<int64_t>(tokenize_weighted(clip.tokenizer, *text).size()) : 0;
}

at::Tensor zero_context(int64_t tokens, int64_t width, at::Device device) {
  return at::zeros({1, tokens, width}, at::TensorOptions(at::kFloat).device(device));
}

at::Tensor zero_pooled(int64_t width, at::Device device) {
  return at::zeros({1, width}, at::TensorOptions(at::kFloat).device(device));
}

}  // namespace

Sd3PromptEncoder::Sd3PromptEncoder(Sd3TextEncoders encoders) : encoders_(std::move(encoders)) {
  if (!encoders_.clip_l && !encoders_.clip_g && !encoders_.t5xxl) {
    throw Error(ErrorCode::kInvalidArgument, "an SD3 CLIP needs at least one text encoder");
  }
}

Conditioning Sd3PromptEncoder::encode(const std::string& prompt) const {
  return encode_prompts({prompt, prompt, prompt});
}

Conditioning Sd3PromptEncoder::encode_sd3(const std::string& clip_l, const std::string& clip_g,
                                          const std::string& t5xxl, bool pad_empty) const {
  const auto tokens = [pad_empty](const std::string& text) -> std::optional<std::string> {
    if (text.empty() && !pad_empty) return std::nullopt;
    return text;
  };
  return encode_prompts({tokens(clip_l), tokens(clip_g), tokens(t5xxl)});
}

std::optional<Sd3PromptEncoder::ClipPart> Sd3PromptEncoder::encode_clips(
    const std::optional<std::string>& text_l, const std::optional<std::string>& text_g) const {
  if (!text_l && !text_g) return std::nullopt;
  const at::Device device = encoders_.device;
  ClipPart part;
  part.pooled = at::cat({zero_pooled(kClipLWidth, device), zero_pooled(kClipGWidth, device)}, -1);
  const TextEncoder* counter = encoders_.clip_l ? &*encoders_.clip_l
                                   : encoders_.clip_g ? &*encoders_.clip_g
                                                      : nullptr;
  if (counter == nullptr) return part;  // T5 alone: zero pooled vector, no CLIP context
  const int64_t chunks = std::max(chunks_of(*counter, text_l), chunks_of(*counter, text_g));
  std::optional<ClipPromptEncoding> l, g;
  if (encoders_.clip_l) l = encode_clip(*encoders_.clip_l, text_l, chunks);
  if (encoders_.clip_g) g = encode_clip(*encoders_.clip_g, text_g, chunks);
  const at::Tensor l_pooled = l ? l->pooled : zero_pooled(kClipLWidth, device);
  const at::Tensor g_pooled = g ? g->pooled : zero_pooled(kClipGWidth, device);
  part.pooled = at::cat({l_pooled, g_pooled}, -1);
  if (l && g) {
    part.context = at::cat({l->hidden, g->hidden}, -1);
  } else if (l) {
    part.context = l->hidden;
  } else {
    part.context = at::constant_pad_nd(g->hidden, {kClipLWidth, 0});
  }
  const int64_t width = part.context.size(-1);
  if (width > kContextWidth) {
    throw Error(ErrorCode::kUnsupported, "the CLIP text encoders give " + std::to_string(width) +
                                             "-wide states, wider than SD3's " +
                                             std::to_string(kContextWidth));
  }
  part.context = at::constant_pad_nd(part.context, {0, kContextWidth - width});
  return part;
}

// ComfyUI encodes an empty T5 token list as a lone end-of-text token.
at::Tensor Sd3PromptEncoder::encode_t5(const std::optional<std::string>& text) const {
  const Sd3T5& t5 = *encoders_.t5xxl;
  const T5WeightedTokens tokens = text ? t5_weighted_tokens(t5.tokenizer, *text, kSd3T5MinLength)
                                       : T5WeightedTokens{{kT5EosId}, {1.0f}};
  return encode_weighted(t5.encoder, tokens).to(encoders_.device);
}

Conditioning Sd3PromptEncoder::encode_prompts(const Sd3Prompts& prompts) const {
  at::InferenceMode guard;
  const at::Device device = encoders_.device;
  const std::optional<ClipPart> clips = encode_clips(prompts.clip_l, prompts.clip_g);
  Conditioning cond;
  if (clips) {
    cond.context = clips->context;
    cond.pooled = clips->pooled;
  }
  if (encoders_.t5xxl) {
    const at::Tensor t5 = encode_t5(prompts.t5xxl);
    if (cond.context.defined() && t5.size(-1) != cond.context.size(-1)) {
      throw Error(ErrorCode::kUnsupported,
                  "the T5 text encoder gives " + std::to_string(t5.size(-1)) +
                      "-wide states; SD3 joins them to CLIP states padded to " +
                      std::to_string(kContextWidth));
    }
    cond.context = cond.context.defined() ? at::cat({cond.context, t5}, 1) : t5;
  }
  if (!cond.context.defined()) cond.context = zero_context(kChunkTokens, kContextWidth, device);
  if (!cond.pooled.defined()) cond.pooled = zero_pooled(kClipLWidth + kClipGWidth, device);
  return cond;
}

namespace {

bool is_t5_file(const std::string& path) {
  const TensorFile file = TensorFile::open(path);
  return std::any_of(file.tensors().begin(), file.tensors().end(), [](const TensorInfo& tensor) {
    return tensor.name.starts_with("encoder.block.");
  });
}

Sd3T5 load_t5(const std::string& path, const RuntimePlacement& placement) {
  const T5Encoder loaded = load_t5_encoder(path, placement.dtype);
  Weights weights = loaded.weights();
  weights.to(placement.dtype, placement.device);
  return Sd3T5{T5Tokenizer::from_file(t5_tokenizer_beside(path)),
               T5Encoder(loaded.config(), weights)};
}

// A CLIP-L or CLIP-G file into `out`'s slot for it.
void load_clip(const std::string& path, const std::string& device, const std::string& dtype,
               const std::string& clip_vocab_dir, Sd3TextEncoders& out) {
  TextEncoder encoder = load_clip_text_encoder(path, clip_vocab_dir, device, dtype);
  const TextEncoderKind kind = detect_text_encoder(TensorFile::open(path)).kind;
  if (kind == TextEncoderKind::kOpenClipH) {
    throw Error(ErrorCode::kUnsupported, "'" + path + "' is a CLIP-H text encoder; SD3 reads "
                                         "CLIP-L, CLIP-G and T5-XXL");
  }
  const bool is_l = kind == TextEncoderKind::kClipL;
  std::optional<TextEncoder>& slot = is_l ? out.clip_l : out.clip_g;
  if (slot) {
    throw Error(ErrorCode::kUnsupported,
                std::string("two ") + (is_l ? "CLIP-L" : "CLIP-G") + " text encoders given");
  }
  slot = std::move(encoder);
}

}  // namespace

std::shared_ptr<const PromptEncoder> load_sd3_prompt_encoder(const std::vector<std::string>& paths,
                                                             const std::string& device,
                                                             const std::string& dtype,
                                                             const std::string& clip_vocab_dir) {
  const RuntimePlacement placement = resolve_placement(device, dtype, Family::kSD3);
  Sd3TextEncoders encoders;
  encoders.device = placement.device;
  for (const std::string& path : paths) {
    if (!is_t5_file(path)) {
      load_clip(path, device, dtype, clip_vocab_dir, encoders);
      continue;
    }
    if (encoders.t5xxl) throw Error(ErrorCode::kUnsupported, "two T5 text encoders given");
    encoders.t5xxl = load_t5(path, placement);
  }
  return std::make_shared<const Sd3PromptEncoder>(std::move(encoders));
}

}  // namespace df::engine::sd3

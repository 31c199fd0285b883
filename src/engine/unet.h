// The SD 1.x / 2.x / SDXL denoising network (diffusers UNet2DConditionModel) in libtorch.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include <ATen/ATen.h>

#include "engine/model_config.h"
#include "engine/weights.h"

namespace df::engine {

// SDXL "text_time" conditioning: pooled text embedding and micro-conditioning numbers
// (orig_h, orig_w, crop_top, crop_left, target_h, target_w; the refiner has 5, with an aesthetic
// score in place of the target size).
// For class_embed_type "projection" (SD2.1 unCLIP) only class_labels is read.
struct UNetAddedConditioning {
  at::Tensor text_embeds;  // [B, P]
  at::Tensor time_ids;     // [B, n]
  at::Tensor class_labels = {};  // [B, projection_class_embeddings_input_dim]
};

// The inputs of one attention before its projections: the query input and the key and value
// inputs (the normed hidden states for self-attention, the text context for cross-attention).
struct AttentionInputs {
  at::Tensor query;
  at::Tensor key;
  at::Tensor value;
};
// ComfyUI's attn1_patch / attn2_patch: rewrites an attention's inputs before its projections
// (hypernetworks add to the keys and values).
using AttentionPatch = std::function<void(AttentionInputs& inputs)>;
struct AttentionPatches {
  std::vector<AttentionPatch> self_attention;   // every transformer block's attn1, in order
  std::vector<AttentionPatch> cross_attention;  // every transformer block's attn2, in order
};

// A block in ComfyUI's UNet numbering (transformer_options["block"]): input block 0 is conv_in,
// then one per down resnet (with its attention) and one per downsampler; the middle block is 0;
// output blocks count the up resnets (with their attention and upsampler) from the deepest.
enum class UNetStage { kInput, kMiddle, kOutput };
struct UNetBlock {
  UNetStage stage = UNetStage::kInput;
  int64_t index = 0;
  bool operator==(const UNetBlock&) const = default;
};
// What a block patch sees of the running call: its block and the sigma being denoised (absent
// when the caller gave none).
struct UNetPatchContext {
  UNetBlock block;
  std::optional<double> sigma;
};
// ComfyUI's input_block_patch / input_block_patch_after_skip: rewrites an input block's output
// before (or after) it is kept as the skip connection.
using InputBlockPatch = std::function<at::Tensor(const at::Tensor& h, const UNetPatchContext&)>;
// ComfyUI's output_block_patch: rewrites the hidden state and its skip before they are joined.
using OutputBlockPatch =
    std::function<void(at::Tensor& h, at::Tensor& skip, const UNetPatchContext&)>;
// ComfyUI's patches_replace "attn1": computes a self-attention from its projected q, k, v
// ([B, L, C], `heads` heads) in place of softmax(q k^T) v.
using AttentionReplacement = std::function<at::Tensor(const at::Tensor& q, const at::Tensor& k,
                                                      const at::Tensor& v, int64_t heads)>;
struct SelfAttentionReplacement {
  UNetBlock block;
  std::optional<size_t> transformer_index;  // absent: every transformer block of `block`
  AttentionReplacement replace;
};
// Every patch a UNet runs, each list in the order the patches were added.
struct UNetPatches {
  AttentionPatches attention;
  std::vector<InputBlockPatch> input_block;
  std::vector<InputBlockPatch> input_block_after_skip;
  std::vector<OutputBlockPatch> output_block;
  // For one transformer block the last matching entry wins, one naming its index before one
  // naming only its block (ComfyUI's lookup).
  std::vector<SelfAttentionReplacement> self_attention_replacements;

  bool empty() const;
  void append(const UNetPatches& more);
};
// ControlNet / T2I-adapter residuals of one call (ComfyUI's "control"): `input[i]` is added to
// input block i's output before it is kept as a skip, `middle` to the mid block's output and
// `output[i]` to skip i when the up path takes it. Missing or undefined entries add nothing.
struct UNetControl {
  std::vector<at::Tensor> input;
  at::Tensor middle;
  std::vector<at::Tensor> output;
};
// What one call passes to its patches beyond the tensors, and the control residuals it adds.
struct UNetStep {
  std::optional<double> sigma;
  UNetControl control = {};
};
// The down path and mid block's results: every input block's output (the skips, in order) and
// the mid block's output.
struct UNetEncoding {
  std::vector<at::Tensor> skips;
  at::Tensor middle;
};

// Weights use the diffusers names (conv_in.weight, down_blocks.1.attentions.0.proj_in.weight, ...).
// Runs in the dtype/device of the weights; inputs are converted to them.
class UNet {
 public:
  UNet(UNetConfig config, Weights weights);
  // The down path and mid block alone (a ControlNet's copy of them): weights without the up path
  // and output head; only encode() runs.
  static UNet encoder_only(UNetConfig config, Weights weights);

  // sample [B, in_channels, h, w] (any h, w >= 1), timesteps [B] or one value for the batch
  // (fractional allowed), context [B, L, cross_attention_dim]; `added` is required exactly when
  // the config has addition_embed_type "text_time" or class_embed_type "projection".
  // Returns [B, out_channels, h, w].
  at::Tensor forward(const at::Tensor& sample, const at::Tensor& timesteps,
                     const at::Tensor& context,
                     const std::optional<UNetAddedConditioning>& added = std::nullopt,
                     const UNetStep& step = {}) const;
  // forward's down path and mid block (inputs as for forward), `step`'s input control applied.
  UNetEncoding encode(const at::Tensor& sample, const at::Tensor& timesteps,
                      const at::Tensor& context,
                      const std::optional<UNetAddedConditioning>& added = std::nullopt,
                      const UNetStep& step = {}) const;

  const UNetConfig& config() const { return config_; }
  const Weights& weights() const { return weights_; }
  // A copy that runs `patches` after its own.
  UNet with_patches(const UNetPatches& patches) const;

 private:
  // The encoding with the time embedding and context the up path reuses.
  struct DownPath {
    at::Tensor temb, context;
    UNetEncoding encoding;
  };
  UNet(UNetConfig config, Weights weights, bool encoder_only);
  void check_weights() const;
  DownPath down_path(const at::Tensor& sample, const at::Tensor& timesteps,
                     const at::Tensor& context, const std::optional<UNetAddedConditioning>& added,
                     const UNetStep& step) const;
  at::Tensor up_path(DownPath down, const UNetStep& step) const;
  void check_inputs(const at::Tensor& sample, const at::Tensor& timesteps,
                    const at::Tensor& context,
                    const std::optional<UNetAddedConditioning>& added) const;
  at::Tensor time_embedding(const at::Tensor& timesteps, int64_t batch,
                            const std::optional<UNetAddedConditioning>& added,
                            const at::TensorOptions& options) const;
  at::Tensor resnet(const Weights& w, const at::Tensor& x, const at::Tensor& temb) const;
  at::Tensor spatial_transformer(const Weights& w, const at::Tensor& x, const at::Tensor& context,
                                 int64_t heads, const UNetBlock& block) const;
  at::Tensor transformer_block(const Weights& w, const at::Tensor& x, const at::Tensor& context,
                               int64_t heads, const AttentionReplacement* self_replacement) const;
  at::Tensor attend(const Weights& w, const at::Tensor& x, const at::Tensor& context,
                    int64_t heads, const std::vector<AttentionPatch>& patches,
                    const AttentionReplacement* replacement = nullptr) const;
  const AttentionReplacement* self_attention_replacement(const UNetBlock& block,
                                                         size_t transformer_index) const;
  // Runs the input block patches on `h` around keeping it as the next skip.
  void end_input_block(at::Tensor& h, std::vector<at::Tensor>& skips, const UNetStep& step) const;
  void patch_output_block(at::Tensor& h, at::Tensor& skip, int64_t index,
                          const UNetStep& step) const;

  UNetConfig config_;
  Weights weights_;
  bool encoder_only_ = false;
  UNetPatches patches_;
};

}  // namespace df::engine

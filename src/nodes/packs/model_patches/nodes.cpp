// Model patch nodes: ModelSamplingDiscrete, ModelSamplingContinuousEDM, RescaleCFG, the UNet
// patches (FreeU, FreeU_V2, PerturbedAttentionGuidance, PatchModelAddDownscale), and model and
// CLIP merges expressed as weight patches over the first input (ComfyUI's "diff" patches of the
// second model's weights).
#include <functional>
#include <map>

#include "core/error.h"
#include "engine/adapters/lora_names.h"
#include "engine/guidance/rescale_cfg.h"
#include "engine/inpaint_mask.h"
#include "engine/unet_patches/deep_shrink.h"
#include "engine/unet_patches/free_u.h"
#include "engine/unet_patches/perturbed_attention.h"
#include "nodes/builtin_nodes.h"
#include "nodes/function_node.h"
#include "nodes/packs/model_patches/merge_blocks.h"
#include "nodes/latent_ops.h"
#include "nodes/node_values.h"

namespace df::nodes {
namespace {

using graph::NodeContext;
using graph::NodeInputs;
using graph::Value;

// The tensor called `full_name` (as Weights::keys() lists it) in the view `weights`.
const at::Tensor& by_full_name(const engine::Weights& weights, const std::string& full_name) {
  const std::string& prefix = weights.prefix();
  return weights.get(prefix.empty() ? full_name : full_name.substr(prefix.size() + 1));
}

// weight = weight * keep + (1 - keep)... in ComfyUI's terms: strength_model * w1 + strength * w2
// for every tensor both sets hold with the same shape (others stay as they are, as in ComfyUI).
engine::WeightPatches merge_patches(const engine::Weights& first, const engine::Weights& second,
                                    const std::function<std::pair<double, double>(const std::string&)>& strengths) {
  std::map<std::string, at::Tensor> others;
  for (const auto& key : second.keys()) others.emplace(key, by_full_name(second, key));
  engine::WeightPatches patches;
  for (const auto& key : first.keys()) {
    if (key.ends_with(".position_ids") || key.ends_with(".logit_scale")) continue;
    auto it = others.find(key);
    if (it == others.end() || it->second.sizes() != by_full_name(first, key).sizes()) continue;
    const auto [strength, strength_model] = strengths(key);
    patches[key].push_back(
        {std::make_shared<engine::DiffAdapter>(it->second), strength, strength_model});
  }
  return patches;
}

// The original (LDM) name of a UNet weight, which ComfyUI's block ratios are matched against.
std::string ldm_unet_name(const std::string& key, const engine::UNetConfig& config) {
  if (auto name = engine::diffusers_unet_key_to_ldm(key, config)) return *name;
  static const std::vector<std::pair<std::string, std::string>> kOutside = {
      {"time_embedding.linear_1.", "time_embed.0."}, {"time_embedding.linear_2.", "time_embed.2."},
      {"add_embedding.linear_1.", "label_emb.0.0."}, {"add_embedding.linear_2.", "label_emb.0.2."},
      {"conv_in.", "input_blocks.0.0."},             {"conv_norm_out.", "out.0."},
      {"conv_out.", "out.2."}};
  for (const auto& [from, to] : kOutside) {
    if (key.starts_with(from)) return to + key.substr(from.size());
  }
  return key;
}

// ComfyUI's ModelMergeBlocks rule: the ratio of the longest argument name the LDM name starts
// with, else the first argument's.
double block_ratio(const std::string& ldm_name, const std::vector<std::pair<std::string, double>>& ratios) {
  double ratio = ratios.front().second;
  size_t longest = 0;
  for (const auto& [prefix, value] : ratios) {
    if (ldm_name.starts_with(prefix) && prefix.size() > longest) {
      ratio = value;
      longest = prefix.size();
    }
  }
  return ratio;
}

std::vector<Value> merged_model(const NodeInputs& in,
                                const std::function<std::pair<double, double>(const std::string&)>& strengths) {
  const auto& first = in.get<ModelValue>("model1").model;
  const auto second = in.get<ModelValue>("model2").model.patched();
  const engine::WeightPatches patches =
      merge_patches(first.base().require_unet("ModelMergeBlocks").weights(),
                    second->require_unet("ModelMergeBlocks").weights(), strengths);
  return {Value::of("MODEL", ModelValue{first.with_weight_patches(patches)})};
}

// Block merges: every float input but the models is a ratio named by an LDM prefix.
std::vector<Value> block_merged_model(const NodeInputs& in, const std::vector<std::string>& names) {
  std::vector<std::pair<std::string, double>> ratios;
  for (const auto& name : names) ratios.emplace_back(name, in.get_float(name));
  const engine::UNetConfig& config = in.get<ModelValue>("model1").model.base().require_unet("model merging").config();
  return merged_model(in, [&](const std::string& key) {
    const double ratio = block_ratio(ldm_unet_name(key, config), ratios);
    return std::pair{1.0 - ratio, ratio};
  });
}

std::vector<Value> merged_clip(const NodeInputs& in, std::pair<double, double> strengths) {
  const auto& first = in.get<ClipValue>("clip1").sd("CLIP merging");
  const auto second = in.get<ClipValue>("clip2").sd("CLIP merging").patched();
  if (second->encoder_count() != first.base().encoder_count()) {
    throw Error(ErrorCode::kInvalidArgument, "the two CLIP models have different text encoders");
  }
  std::vector<engine::WeightPatches> patches;
  for (size_t i = 0; i < second->encoder_count(); ++i) {
    patches.push_back(merge_patches(first.base().encoder_weights(i), second->encoder_weights(i),
                                    [&](const std::string&) { return strengths; }));
  }
  return {Value::of("CLIP", ClipValue{first.with_weight_patches(patches)})};
}

engine::NoiseSchedule sampling_schedule(const engine::NoiseSchedule& base, const std::string& sampling,
                                        bool zsnr) {
  engine::NoiseSchedule schedule = base;
  if (sampling == "eps") {
    schedule = base.with_prediction(engine::Prediction::kEpsilon);
  } else if (sampling == "v_prediction") {
    schedule = base.with_prediction(engine::Prediction::kVPrediction);
  } else if (sampling == "x0") {
    schedule = base.with_prediction(engine::Prediction::kSample);
  } else if (sampling == "lcm") {
    schedule = base.with_lcm_distillation();
  } else {
    throw Error(ErrorCode::kInvalidArgument, "sampling must be eps, v_prediction, lcm or x0");
  }
  return zsnr ? schedule.with_zero_terminal_snr() : schedule;
}

// ModelSamplingContinuousEDM's variants this engine runs: eps and v_prediction (sigma_data 1), edm
// and edm_playground_v2.5 (sigma_data 0.5; Playground's latent format too). cosmos_rflow needs a
// Cosmos model and is refused.
engine::ModelPatcher continuous_edm_model(const engine::ModelPatcher& model,
                                          const std::string& sampling, double sigma_max,
                                          double sigma_min) {
  const engine::NoiseSchedule& base = model.base().schedule;
  if (sampling == "eps") {
    return model.with_schedule(base.with_continuous_edm(sigma_min, sigma_max, 1.0, engine::Prediction::kEpsilon));
  }
  if (sampling == "v_prediction") {
    return model.with_schedule(
        base.with_continuous_edm(sigma_min, sigma_max, 1.0, engine::Prediction::kVPrediction));
  }
  if (sampling == "edm" || sampling == "edm_playground_v2.5") {
    const engine::ModelPatcher edm =
        model.with_schedule(base.with_continuous_edm(sigma_min, sigma_max, 0.5, engine::Prediction::kEdm));
    if (sampling == "edm") return edm;
    return edm.with_latent_format(engine::LatentFormat{
        4, 0.5, 0.0, {{-1.6574f, 1.886f, -1.383f, 2.5155f}, {8.4927f, 5.9022f, 6.5498f, 5.2299f}}});
  }
  if (sampling == "cosmos_rflow") {
    throw Error(ErrorCode::kUnsupported,
                "ModelSamplingContinuousEDM sampling 'cosmos_rflow' is not supported (it needs a "
                "Cosmos model)");
  }
  throw Error(ErrorCode::kInvalidArgument,
              "sampling must be v_prediction, edm, edm_playground_v2.5, eps or cosmos_rflow");
}

// common_upscale without crop, as Deep Shrink resizes the UNet's features.
engine::FeatureResize feature_resize(const std::string& method) {
  return [method](const at::Tensor& features, int64_t width, int64_t height) {
    return upscale_latents(features, method, width, height, "disabled");
  };
}

std::vector<Value> patched_model(const engine::ModelPatcher& model) {
  return {Value::of("MODEL", ModelValue{model})};
}

void register_unet_patches(graph::NodeImplRegistry& registry) {
  const auto free_u = [](engine::FreeUVersion version) {
    return [version](const NodeInputs& in, NodeContext&) {
      const auto& model = in.get<ModelValue>("model").model;
      const engine::FreeUFactors factors{in.get_float("b1"), in.get_float("b2"), in.get_float("s1"),
                                         in.get_float("s2")};
      const int64_t model_channels = model.base().require_unet("Deep Shrink").config().block_out_channels.front();
      return patched_model(
          model.with_unet_patches(engine::free_u_patches(model_channels, factors, version)));
    };
  };
  add_function_node(registry, "FreeU", free_u(engine::FreeUVersion::kV1));
  add_function_node(registry, "FreeU_V2", free_u(engine::FreeUVersion::kV2));
  add_function_node(registry, "PerturbedAttentionGuidance", [](const NodeInputs& in, NodeContext&) {
    const auto& model = in.get<ModelValue>("model").model;
    return patched_model(model.with_post_cfg_function(
        engine::perturbed_attention_guidance_function(in.get_float("scale"))));
  });
  add_function_node(registry, "PatchModelAddDownscale", [](const NodeInputs& in, NodeContext&) {
    const auto& model = in.get<ModelValue>("model").model;
    engine::DeepShrinkOptions options;
    options.block_number = in.get_int("block_number");
    options.downscale_factor = in.get_float("downscale_factor");
    options.sigma_start = model.schedule().percent_to_sigma(in.get_float("start_percent"));
    options.sigma_end = model.schedule().percent_to_sigma(in.get_float("end_percent"));
    options.after_skip = in.get_bool("downscale_after_skip");
    return patched_model(model.with_unet_patches(engine::deep_shrink_patches(
        options, feature_resize(in.get_string("downscale_method")),
        feature_resize(in.get_string("upscale_method")))));
  });
  add_function_node(registry, "ModelSamplingContinuousEDM", [](const NodeInputs& in, NodeContext&) {
    const auto& model = in.get<ModelValue>("model").model;
    return patched_model(continuous_edm_model(model, in.get_string("sampling"),
                                              in.get_float("sigma_max"), in.get_float("sigma_min")));
  });
}

void register_merges(graph::NodeImplRegistry& registry) {
  add_function_node(registry, "ModelMergeSimple", [](const NodeInputs& in, NodeContext&) {
    const double ratio = in.get_float("ratio");
    return merged_model(in, [ratio](const std::string&) { return std::pair{1.0 - ratio, ratio}; });
  });
  add_function_node(registry, "ModelMergeAdd", [](const NodeInputs& in, NodeContext&) {
    return merged_model(in, [](const std::string&) { return std::pair{1.0, 1.0}; });
  });
  add_function_node(registry, "ModelMergeSubtract", [](const NodeInputs& in, NodeContext&) {
    const double m = in.get_float("multiplier");
    return merged_model(in, [m](const std::string&) { return std::pair{-m, m}; });
  });
  add_function_node(registry, "ModelMergeBlocks", [](const NodeInputs& in, NodeContext&) {
    return block_merged_model(in, {"input", "middle", "out"});
  });
  add_function_node(registry, "ModelMergeSD1", [](const NodeInputs& in, NodeContext&) {
    return block_merged_model(in, merge_block_names(kSd1MergeBlocks));
  });
  add_function_node(registry, "ModelMergeSD2", [](const NodeInputs& in, NodeContext&) {
    return block_merged_model(in, merge_block_names(kSd1MergeBlocks));
  });
  add_function_node(registry, "ModelMergeSDXL", [](const NodeInputs& in, NodeContext&) {
    return block_merged_model(in, merge_block_names(kSdxlMergeBlocks));
  });
  add_function_node(registry, "CLIPMergeSimple", [](const NodeInputs& in, NodeContext&) {
    const double ratio = in.get_float("ratio");
    return merged_clip(in, {1.0 - ratio, ratio});
  });
  add_function_node(registry, "CLIPMergeAdd", [](const NodeInputs& in, NodeContext&) {
    return merged_clip(in, {1.0, 1.0});
  });
  add_function_node(registry, "CLIPMergeSubtract", [](const NodeInputs& in, NodeContext&) {
    const double m = in.get_float("multiplier");
    return merged_clip(in, {-m, m});
  });
}

}  // namespace

void register_model_patches_nodes(graph::NodeImplRegistry& registry, NodeResources) {
  add_function_node(registry, "ModelSamplingDiscrete", [](const NodeInputs& in, NodeContext&) {
    const auto& model = in.get<ModelValue>("model").model;
    return std::vector<Value>{Value::of(
        "MODEL", ModelValue{model.with_schedule(sampling_schedule(
                     model.base().schedule, in.get_string("sampling"), in.get_bool("zsnr")))})};
  });
  add_function_node(registry, "DifferentialDiffusion", [](const NodeInputs& in, NodeContext&) {
    const auto& model = in.get<ModelValue>("model").model;
    return std::vector<Value>{Value::of(
        "MODEL", ModelValue{model.with_denoise_mask_function(engine::differential_diffusion())})};
  });
  add_function_node(registry, "RescaleCFG", [](const NodeInputs& in, NodeContext&) {
    const auto& model = in.get<ModelValue>("model").model;
    return std::vector<Value>{
        Value::of("MODEL", ModelValue{model.with_cfg_function(engine::rescale_cfg(in.get_float("multiplier")))})};
  });
  register_unet_patches(registry);
  register_merges(registry);
}

}  // namespace df::nodes

// Flow-matching family nodes: ModelSamplingFlux/SD3/AuraFlow set a model's flow schedule,
// FluxGuidance sets FLUX.1 dev's distilled guidance, CLIPTextEncodeFlux encodes FLUX.1's two prompts,
// CLIPTextEncodeSD3 SD3's three,
// EmptySD3LatentImage makes 16-channel latents, CFGNorm caps the guided estimate's channel norm.
#include "core/error.h"
#include "engine/family/families.h"
#include "engine/family/flux/flux_prompt_encoder.h"
#include "engine/family/sd3/sd3_prompt_encoder.h"
#include "engine/guidance/cfg_norm.h"
#include "engine/noise_schedule.h"
#include "nodes/builtin_nodes.h"
#include "nodes/function_node.h"
#include "nodes/node_values.h"

namespace df::nodes {
namespace {

using graph::NodeContext;
using graph::NodeInputs;
using graph::Value;

std::vector<Value> model_with_schedule(const NodeInputs& in, engine::NoiseSchedule schedule) {
  const auto& model = in.get<ModelValue>("model").model;
  return {Value::of("MODEL", ModelValue{model.with_schedule(std::move(schedule))})};
}

// ModelSamplingFlux's shift: linear in the number of 2x2 latent patches, base_shift at 256 of
// them and max_shift at 4096.
double flux_resolution_shift(const NodeInputs& in) {
  constexpr double kFewPatches = 256, kManyPatches = 4096;
  const double max_shift = in.get_float("max_shift"), base_shift = in.get_float("base_shift");
  const double slope = (max_shift - base_shift) / (kManyPatches - kFewPatches);
  const double patches =
      static_cast<double>(in.get_int("width")) * static_cast<double>(in.get_int("height")) /
      (8 * 8 * 2 * 2);
  return patches * slope + (base_shift - slope * kFewPatches);
}

// The FLUX.1 text side of a CLIP input; Error(kUnsupported) naming `node` for any other CLIP.
const engine::flux::FluxPromptEncoder& flux_text(const ClipValue& clip, const std::string& node) {
  const auto* flux = dynamic_cast<const engine::flux::FluxPromptEncoder*>(clip.encoder.get());
  if (flux == nullptr) {
    throw Error(ErrorCode::kUnsupported,
                node + " needs a FLUX.1 CLIP (DualCLIPLoader type 'flux' with CLIP-L and T5-XXL)");
  }
  return *flux;
}

// The SD3 text side of a CLIP input; Error(kUnsupported) naming `node` for any other CLIP.
const engine::sd3::Sd3PromptEncoder& sd3_text(const ClipValue& clip, const std::string& node) {
  const auto* sd3 = dynamic_cast<const engine::sd3::Sd3PromptEncoder*>(clip.encoder.get());
  if (sd3 == nullptr) {
    throw Error(ErrorCode::kUnsupported,
                node + " needs an SD3 CLIP (TripleCLIPLoader, or CLIPLoader / DualCLIPLoader "
                       "type 'sd3')");
  }
  return *sd3;
}

}  // namespace

void register_flow_nodes(graph::NodeImplRegistry& registry, NodeResources resources) {
  add_function_node(registry, "ModelSamplingFlux", [](const NodeInputs& in, NodeContext&) {
    return model_with_schedule(in, engine::NoiseSchedule::flux_flow(flux_resolution_shift(in)));
  });
  add_function_node(registry, "ModelSamplingSD3", [](const NodeInputs& in, NodeContext&) {
    return model_with_schedule(in,
                               engine::NoiseSchedule::discrete_flow(in.get_float("shift"), 1000.0));
  });
  add_function_node(registry, "ModelSamplingAuraFlow", [](const NodeInputs& in, NodeContext&) {
    return model_with_schedule(in, engine::NoiseSchedule::discrete_flow(in.get_float("shift"), 1.0));
  });
  add_function_node(registry, "CFGNorm", [](const NodeInputs& in, NodeContext&) {
    const auto& model = in.get<ModelValue>("model").model;
    return std::vector<Value>{Value::of(
        "MODEL",
        ModelValue{model.with_post_cfg_function(engine::cfg_norm(in.get_float("strength")))})};
  });
  add_function_node(registry, "FluxGuidance", [](const NodeInputs& in, NodeContext&) {
    ConditioningValue value = in.get<ConditioningValue>("conditioning");
    for (engine::Conditioning& entry : value.entries) entry.guidance = in.get_float("guidance");
    return std::vector<Value>{Value::of("CONDITIONING", std::move(value))};
  });
  add_function_node(registry, "CLIPTextEncodeFlux", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "encode_prompt");
    const auto& encoder = flux_text(in.get<ClipValue>("clip"), "CLIPTextEncodeFlux");
    engine::Conditioning cond = encoder.encode_parts(in.get_string("clip_l"), in.get_string("t5xxl"));
    cond.guidance = in.get_float("guidance");
    return std::vector<Value>{Value::of("CONDITIONING", ConditioningValue{{std::move(cond)}})};
  });
  add_function_node(registry, "CLIPTextEncodeSD3", [](const NodeInputs& in, NodeContext&) {
    const auto& encoder = sd3_text(in.get<ClipValue>("clip"), "CLIPTextEncodeSD3");
    engine::Conditioning cond =
        encoder.encode_sd3(in.get_string("clip_l"), in.get_string("clip_g"),
                           in.get_string("t5xxl"), in.get_string("empty_padding") != "none");
    return std::vector<Value>{Value::of("CONDITIONING", ConditioningValue{{std::move(cond)}})};
  });
  add_function_node(registry, "EmptySD3LatentImage", [](const NodeInputs& in, NodeContext&) {
    const int64_t width = in.get_int("width"), height = in.get_int("height");
    const int channels = engine::latent_format_of(engine::Family::kSD3).channels;
    LatentValue latent{
        at::zeros({in.get_int("batch_size"), channels, height / 8, width / 8}, at::kFloat)};
    return std::vector<Value>{Value::of("LATENT", std::move(latent))};
  });
}

}  // namespace df::nodes

// Conditioning nodes: prompts encoded by a CLIP value, and the nodes that combine conditionings
// or set where and when their entries apply.
#include <iostream>

#include "core/error.h"
#include "nodes/builtin_nodes.h"
#include "nodes/function_node.h"
#include "nodes/node_values.h"

namespace df::nodes {
namespace {

using engine::Conditioning;
using engine::ConditioningList;
using graph::NodeContext;
using graph::NodeInputs;
using graph::Value;

std::vector<Value> conditioning_output(ConditioningList entries) {
  return {Value::of("CONDITIONING", ConditioningValue{std::move(entries)})};
}

const ConditioningList& conditioning_input(const NodeInputs& in, const char* name) {
  return in.get<ConditioningValue>(name).entries;
}

// Every entry of the "conditioning" input with `change` applied to a copy.
template <class Change>
std::vector<Value> each_entry(const NodeInputs& in, Change change) {
  ConditioningList entries = conditioning_input(in, "conditioning");
  for (Conditioning& entry : entries) change(entry);
  return conditioning_output(std::move(entries));
}

// ConditioningConcat and ConditioningAverage use only the first entry of conditioning_from.
const Conditioning& first_source(const NodeInputs& in, const char* node) {
  const ConditioningList& from = conditioning_input(in, "conditioning_from");
  if (from.empty()) throw Error(ErrorCode::kInvalidArgument, "conditioning_from is empty");
  if (from.size() > 1) {
    std::cerr << "Warning: " << node << " conditioning_from contains more than 1 cond, only the "
              << "first one will actually be applied to conditioning_to.\n";
  }
  return from.front();
}

std::vector<Value> average(const NodeInputs& in) {
  const Conditioning& from = first_source(in, "ConditioningAverage");
  const double to_strength = in.get_float("conditioning_to_strength");
  ConditioningList entries = conditioning_input(in, "conditioning_to");
  for (Conditioning& to : entries) {
    const int64_t length = to.context.size(1);
    at::Tensor source = from.context.narrow(1, 0, std::min(length, from.context.size(1)));
    if (source.size(1) < length) {
      source = at::cat({source, at::zeros({1, length - source.size(1), to.context.size(2)},
                                          source.options())},
                       1);
    }
    to.context = to.context * to_strength + source * (1.0 - to_strength);
    if (from.pooled.defined() && to.pooled.defined()) {
      to.pooled = to.pooled * to_strength + from.pooled * (1.0 - to_strength);
    } else if (from.pooled.defined()) {
      to.pooled = from.pooled;
    }
  }
  return conditioning_output(std::move(entries));
}

std::vector<Value> concat(const NodeInputs& in) {
  const Conditioning& from = first_source(in, "ConditioningConcat");
  ConditioningList entries = conditioning_input(in, "conditioning_to");
  for (Conditioning& to : entries) to.context = at::cat({to.context, from.context}, 1);
  return conditioning_output(std::move(entries));
}

// ComfyUI stores areas in latent cells: pixel values floor-divided by 8.
engine::ConditioningArea pixel_area(const NodeInputs& in) {
  auto cells = [&in](const char* name) { return double(in.get_int(name) / 8); };
  return {false, cells("height"), cells("width"), cells("y"), cells("x")};
}

engine::ConditioningArea relative_area(const NodeInputs& in) {
  return {true, in.get_float("height"), in.get_float("width"), in.get_float("y"),
          in.get_float("x")};
}

at::Tensor mask_input(const NodeInputs& in) {
  at::Tensor mask = in.get<MaskValue>("mask").mask;
  return mask.dim() < 3 ? mask.unsqueeze(0) : mask;
}

void register_encoders(graph::NodeImplRegistry& registry, NodeResources resources) {
  add_function_node(registry, "CLIPTextEncode", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "encode_prompt");
    const auto& clip = in.get<ClipValue>("clip");
    return conditioning_output({clip.encode(in.get_string("text"))});
  });

  add_function_node(registry, "CLIPTextEncodeSDXL", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "encode_prompt");
    const auto& clip = in.get<ClipValue>("clip");
    Conditioning cond = clip.sd("CLIPTextEncodeSDXL").patched()->encode_sdxl(in.get_string("text_l"), in.get_string("text_g"));
    cond.sdxl_size = engine::SdxlSizeConditioning{
        double(in.get_int("width")),        double(in.get_int("height")),
        double(in.get_int("crop_w")),       double(in.get_int("crop_h")),
        double(in.get_int("target_width")), double(in.get_int("target_height"))};
    return conditioning_output({cond});
  });

  add_function_node(registry, "CLIPTextEncodeSDXLRefiner", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "encode_prompt");
    const auto& clip = in.get<ClipValue>("clip");
    Conditioning cond = clip.sd("CLIPTextEncodeSDXLRefiner").patched()->encode(in.get_string("text"));
    const double width = double(in.get_int("width")), height = double(in.get_int("height"));
    cond.sdxl_size = engine::SdxlSizeConditioning{width, height, 0, 0, width, height};
    cond.aesthetic_score = in.get_float("ascore");
    return conditioning_output({cond});
  });

  add_function_node(registry, "CLIPSetLastLayer", [](const NodeInputs& in, NodeContext&) {
    const auto& clip = in.get<ClipValue>("clip");
    const int layer = static_cast<int>(in.get_int("stop_at_clip_layer"));
    return std::vector<Value>{Value::of("CLIP", ClipValue{clip.sd("CLIPSetLastLayer").with_last_layer(layer)})};
  });
}

void register_transforms(graph::NodeImplRegistry& registry) {
  add_function_node(registry, "ConditioningCombine", [](const NodeInputs& in, NodeContext&) {
    ConditioningList entries = conditioning_input(in, "conditioning_1");
    const ConditioningList& second = conditioning_input(in, "conditioning_2");
    entries.insert(entries.end(), second.begin(), second.end());
    return conditioning_output(std::move(entries));
  });
  add_function_node(registry, "ConditioningAverage",
                    [](const NodeInputs& in, NodeContext&) { return average(in); });
  add_function_node(registry, "ConditioningConcat",
                    [](const NodeInputs& in, NodeContext&) { return concat(in); });
  add_function_node(registry, "ConditioningSetArea", [](const NodeInputs& in, NodeContext&) {
    const engine::ConditioningArea area = pixel_area(in);
    const double strength = in.get_float("strength");
    return each_entry(in, [&](Conditioning& c) {
      c.area = area;
      c.strength = strength;
      c.mask_sets_area = false;
    });
  });
  add_function_node(registry, "ConditioningSetAreaPercentage", [](const NodeInputs& in, NodeContext&) {
    const engine::ConditioningArea area = relative_area(in);
    const double strength = in.get_float("strength");
    return each_entry(in, [&](Conditioning& c) {
      c.area = area;
      c.strength = strength;
      c.mask_sets_area = false;
    });
  });
  add_function_node(registry, "ConditioningSetAreaStrength", [](const NodeInputs& in, NodeContext&) {
    const double strength = in.get_float("strength");
    return each_entry(in, [&](Conditioning& c) { c.strength = strength; });
  });
  add_function_node(registry, "ConditioningSetMask", [](const NodeInputs& in, NodeContext&) {
    const at::Tensor mask = mask_input(in);
    const double strength = in.get_float("strength");
    const std::string area = in.get_string("set_cond_area");
    if (area != "default" && area != "mask bounds") {
      throw Error(ErrorCode::kInvalidArgument, "set_cond_area must be 'default' or 'mask bounds'");
    }
    return each_entry(in, [&](Conditioning& c) {
      c.mask = mask;
      c.mask_strength = strength;
      c.mask_sets_area = area == "mask bounds";
    });
  });
  add_function_node(registry, "ConditioningZeroOut", [](const NodeInputs& in, NodeContext&) {
    return each_entry(in, [](Conditioning& c) {
      c.context = at::zeros_like(c.context);
      if (c.pooled.defined()) c.pooled = at::zeros_like(c.pooled);
    });
  });
  add_function_node(registry, "ConditioningSetTimestepRange", [](const NodeInputs& in, NodeContext&) {
    const double start = in.get_float("start"), end = in.get_float("end");
    return each_entry(in, [&](Conditioning& c) {
      c.start_percent = start;
      c.end_percent = end;
    });
  });
}

}  // namespace

void register_conditioning_nodes(graph::NodeImplRegistry& registry, NodeResources resources) {
  register_encoders(registry, resources);
  register_transforms(registry);
}

}  // namespace df::nodes

// ControlNet nodes: loading ControlNets and chaining them onto conditioning entries with their
// hint image, strength and step window.
#include <map>
#include <memory>
#include <mutex>

#include "engine/control/control_chain.h"
#include "engine/control/controlnet_loader.h"
#include "nodes/builtin_nodes.h"
#include "nodes/function_node.h"
#include "nodes/image_tensors.h"
#include "nodes/node_values.h"

namespace df::nodes {
namespace {

using engine::ConditioningList;
using engine::ControlLink;
using graph::NodeContext;
using graph::NodeInputs;
using graph::Value;

// The last size a hint was made at and the hint, shared by the copies of one link's HintAtSize.
struct SizedHint {
  std::mutex mutex;
  int64_t width = 0, height = 0;
  at::Tensor hint;
};

// ComfyUI's cond hint: the IMAGE channels first, centre-cropped to the latent's aspect and resized
// with nearest-exact to its pixel size when sampling; made once per size, as ComfyUI keeps it, not
// at every model call.
engine::HintAtSize hint_of(const at::Tensor& pixels) {
  auto last = std::make_shared<SizedHint>();
  return [pixels, last](int64_t width, int64_t height) {
    const std::lock_guard<std::mutex> lock(last->mutex);
    if (!last->hint.defined() || last->width != width || last->height != height) {
      last->hint =
          scale_images(pixels, "nearest-exact", width, height, "center").permute({0, 3, 1, 2});
      last->width = width;
      last->height = height;
    }
    return last->hint;
  };
}

// A link applying the node's ControlNet, image and strength after `previous`.
std::shared_ptr<const ControlLink> new_link(const NodeInputs& in, double start, double end,
                                            std::shared_ptr<const ControlLink> previous) {
  ControlLink link;
  link.net = in.get<ControlNetValue>("control_net").net;
  link.hint = hint_of(in.get<ImageValue>("image").pixels);
  link.strength = in.get_float("strength");
  link.start_percent = start;
  link.end_percent = end;
  link.previous = std::move(previous);
  return std::make_shared<const ControlLink>(std::move(link));
}

Value conditioning_value(ConditioningList entries) {
  return Value::of("CONDITIONING", ConditioningValue{std::move(entries)});
}

// ControlNetApply: every entry gets its own link after its earlier controls; the negative entries
// without controls take them when sampling.
std::vector<Value> apply_to_conditioning(const NodeInputs& in) {
  ConditioningList entries = in.get<ConditioningValue>("conditioning").entries;
  if (in.get_float("strength") == 0.0) return {conditioning_value(std::move(entries))};
  for (engine::Conditioning& entry : entries) {
    entry.control = new_link(in, 0.0, 1.0, entry.control);
    entry.control_applies_to_negative = true;
  }
  return {conditioning_value(std::move(entries))};
}

// ControlNetApplyAdvanced / ControlNetApplySD3: entries of both sides that had the same earlier
// controls share one new link. The VAE only matters to ControlNets of other model families.
std::vector<Value> apply_to_both(const NodeInputs& in) {
  ConditioningList positive = in.get<ConditioningValue>("positive").entries;
  ConditioningList negative = in.get<ConditioningValue>("negative").entries;
  if (in.get_float("strength") == 0.0) {
    return {conditioning_value(std::move(positive)), conditioning_value(std::move(negative))};
  }
  const double start = in.get_float("start_percent"), end = in.get_float("end_percent");
  std::map<const ControlLink*, std::shared_ptr<const ControlLink>> links;
  for (ConditioningList* side : {&positive, &negative}) {
    for (engine::Conditioning& entry : *side) {
      auto& link = links[entry.control.get()];
      if (!link) link = new_link(in, start, end, entry.control);
      entry.control = link;
      entry.control_applies_to_negative = false;
    }
  }
  return {conditioning_value(std::move(positive)), conditioning_value(std::move(negative))};
}

Value controlnet_value(std::shared_ptr<const engine::ControlModel> net) {
  return Value::of("CONTROL_NET", ControlNetValue{std::move(net)});
}

}  // namespace

void register_controlnet_nodes(graph::NodeImplRegistry& registry, NodeResources resources) {
  add_function_node(registry, "ControlNetLoader", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "load_model");
    return std::vector<Value>{controlnet_value(resources.models.controlnet(in.get_string("control_net_name")))};
  });
  // A difference ControlNet's weights are offsets from the model's UNet weights.
  add_function_node(registry, "DiffControlNetLoader", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "load_model");
    const auto model = in.get<ModelValue>("model").model.patched();
    const CheckpointStoreOptions& options = resources.models.options();
    return std::vector<Value>{controlnet_value(engine::load_control_model(
        resources.models.model_file("controlnet", in.get_string("control_net_name")),
        options.device, options.dtype, &model->require_unet("DiffControlNetLoader").weights()))};
  });
  add_function_node(registry, "T2IAdapterLoader", [resources](const NodeInputs& in, NodeContext& ctx) {
    report_stage(resources.env, ctx, "load_model");
    const std::string name = in.get_string("t2i_adapter_name");
    return std::vector<Value>{controlnet_value(resources.models.controlnet(name))};
  });
  add_function_node(registry, "ControlNetApply",
                    [](const NodeInputs& in, NodeContext&) { return apply_to_conditioning(in); });
  for (const char* name : {"ControlNetApplyAdvanced", "ControlNetApplySD3"}) {
    add_function_node(registry, name,
                      [](const NodeInputs& in, NodeContext&) { return apply_to_both(in); });
  }
}

}  // namespace df::nodes

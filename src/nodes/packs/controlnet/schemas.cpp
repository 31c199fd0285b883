// ControlNet node schemas: the loaders and the nodes that apply a ControlNet to conditionings.
#include "nodes/packs/node_packs.h"
#include "nodes/packs/schema_builders.h"

namespace df::nodes {
namespace {

using graph::NodeSchema;
using namespace schema;

NodeSchema controlnet_loader() {
  NodeSchema s;
  s.name = "ControlNetLoader";
  s.display_name = "Load ControlNet Model";
  s.category = "loaders";
  s.required = {model_file_combo("control_net_name", "controlnet")};
  set_outputs(s, {"CONTROL_NET"});
  return s;
}

NodeSchema diff_controlnet_loader() {
  NodeSchema s;
  s.name = "DiffControlNetLoader";
  s.display_name = "Load ControlNet Model (diff)";
  s.category = "loaders";
  s.required = {typed("model", "MODEL"), model_file_combo("control_net_name", "controlnet")};
  set_outputs(s, {"CONTROL_NET"});
  return s;
}

// ComfyUI's loader for T2I adapters (no display name: ComfyUI shows the class name); its
// "controlnet" folders include models/t2i_adapter.
NodeSchema t2i_adapter_loader() {
  NodeSchema s;
  s.name = "T2IAdapterLoader";
  s.display_name = "T2IAdapterLoader";
  s.category = "loaders";
  s.required = {model_file_combo("t2i_adapter_name", "controlnet")};
  set_outputs(s, {"CONTROL_NET"});
  return s;
}

graph::InputSpec strength_input() { return float_input("strength", 1.0, 0.0, 10.0, 0.01); }
graph::InputSpec start_percent_input() { return float_input("start_percent", 0.0, 0.0, 1.0, 0.001); }
graph::InputSpec end_percent_input() { return float_input("end_percent", 1.0, 0.0, 1.0, 0.001); }

NodeSchema controlnet_apply() {
  NodeSchema s;
  s.name = "ControlNetApply";
  s.display_name = "Apply ControlNet (OLD)";
  s.category = "conditioning/controlnet";
  s.deprecated = true;
  s.required = {typed("conditioning", "CONDITIONING"), typed("control_net", "CONTROL_NET"),
                typed("image", "IMAGE"), strength_input()};
  set_outputs(s, {"CONDITIONING"});
  return s;
}

NodeSchema controlnet_apply_advanced() {
  NodeSchema s;
  s.name = "ControlNetApplyAdvanced";
  s.display_name = "Apply ControlNet";
  s.category = "conditioning/controlnet";
  s.required = {typed("positive", "CONDITIONING"), typed("negative", "CONDITIONING"),
                typed("control_net", "CONTROL_NET"), typed("image", "IMAGE"),
                strength_input(), start_percent_input(), end_percent_input()};
  s.optional = {typed("vae", "VAE")};
  set_named_outputs(s, {"CONDITIONING", "CONDITIONING"}, {"positive", "negative"});
  return s;
}

// ComfyUI keeps the SD3 name as a deprecated alias taking the VAE as a required input.
NodeSchema controlnet_apply_sd3() {
  NodeSchema s;
  s.name = "ControlNetApplySD3";
  s.display_name = "Apply Controlnet with VAE";
  s.category = "conditioning/controlnet";
  s.python_module = "comfy_extras.nodes_sd3";
  s.deprecated = true;
  s.required = {typed("positive", "CONDITIONING"), typed("negative", "CONDITIONING"),
                typed("control_net", "CONTROL_NET"), typed("vae", "VAE"), typed("image", "IMAGE"),
                strength_input(), start_percent_input(), end_percent_input()};
  set_named_outputs(s, {"CONDITIONING", "CONDITIONING"}, {"positive", "negative"});
  return s;
}

}  // namespace

void add_controlnet_schemas(graph::NodeSchemaRegistry& registry) {
  registry.add(controlnet_loader());
  registry.add(diff_controlnet_loader());
  registry.add(t2i_adapter_loader());
  registry.add(controlnet_apply());
  registry.add(controlnet_apply_advanced());
  registry.add(controlnet_apply_sd3());
}

}  // namespace df::nodes

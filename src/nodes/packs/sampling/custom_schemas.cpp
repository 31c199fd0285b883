// Custom-sampling node schemas (ComfyUI's comfy_extras/nodes_custom_sampler.py): the samplers,
// schedulers, sigma tools, noises and guiders that SamplerCustom(Advanced) combine.
#include <string>
#include <vector>

#include "nodes/packs/schema_builders.h"

namespace df::nodes {
namespace {

using graph::InputSpec;
using graph::NodeSchema;
using nlohmann::json;
using namespace schema;

constexpr const char* kModule = "comfy_extras.nodes_custom_sampler";

NodeSchema custom_node(std::string name, std::string category, std::vector<InputSpec> inputs,
                       std::vector<std::string> outputs, std::string display_name = "") {
  NodeSchema s;
  s.display_name = display_name.empty() ? name : std::move(display_name);
  s.name = std::move(name);
  s.category = std::move(category);
  s.python_module = kModule;
  s.required = std::move(inputs);
  set_outputs(s, std::move(outputs));
  return s;
}

// SamplerCustom(Advanced)'s two latents: the result and the last step's x0 estimate.
NodeSchema with_sample_outputs(NodeSchema s) {
  set_named_outputs(s, {"LATENT", "LATENT"}, {"output", "denoised_output"});
  return s;
}

InputSpec seed_input(std::string name) {
  return typed(std::move(name), "INT",
               {{"default", 0}, {"min", 0}, {"max", kSeedMax}, {"control_after_generate", true}});
}

InputSpec cfg_input(std::string name) {
  return typed(std::move(name), "FLOAT",
               {{"default", 8.0}, {"min", 0.0}, {"max", 100.0}, {"step", 0.1}, {"round", 0.01}});
}

InputSpec steps_input() { return int_input("steps", 20, 1, 10000); }

// The sigma and rho widgets of the parametric schedulers (unrounded, shown under "advanced").
InputSpec schedule_float(std::string name, double default_value, double max) {
  return typed(std::move(name), "FLOAT",
               {{"default", default_value},
                {"min", 0.0},
                {"max", max},
                {"step", 0.01},
                {"round", false},
                {"advanced", true}});
}

InputSpec sigma_max_input() { return schedule_float("sigma_max", 14.614642, 5000.0); }
InputSpec sigma_min_input() { return schedule_float("sigma_min", 0.0291675, 5000.0); }

InputSpec denoise_input() { return float_input("denoise", 1.0, 0.0, 1.0, 0.01); }

NodeSchema sampler_custom() {
  return with_sample_outputs(custom_node(
      "SamplerCustom", "sampling/custom_sampling",
      {typed("model", "MODEL"), typed("add_noise", "BOOLEAN", {{"default", true}, {"advanced", true}}),
       seed_input("noise_seed"), cfg_input("cfg"), typed("positive", "CONDITIONING"),
       typed("negative", "CONDITIONING"), typed("sampler", "SAMPLER"), typed("sigmas", "SIGMAS"),
       typed("latent_image", "LATENT")},
      {}));
}

NodeSchema sampler_custom_advanced() {
  return with_sample_outputs(custom_node(
      "SamplerCustomAdvanced", "sampling/custom_sampling",
      {typed("noise", "NOISE"), typed("guider", "GUIDER"), typed("sampler", "SAMPLER"),
       typed("sigmas", "SIGMAS"), typed("latent_image", "LATENT")},
      {}));
}

std::vector<NodeSchema> schedulers() {
  const char* category = "sampling/schedulers";
  return {
      custom_node("BasicScheduler", category,
                  {typed("model", "MODEL"),
                   context_combo("scheduler", graph::ComboSource::kSchedulers), steps_input(),
                   denoise_input()},
                  {"SIGMAS"}),
      custom_node("KarrasScheduler", category,
                  {steps_input(), sigma_max_input(), sigma_min_input(),
                   schedule_float("rho", 7.0, 100.0)},
                  {"SIGMAS"}),
      custom_node("ExponentialScheduler", category,
                  {steps_input(), sigma_max_input(), sigma_min_input()}, {"SIGMAS"}),
      custom_node("PolyexponentialScheduler", category,
                  {steps_input(), sigma_max_input(), sigma_min_input(),
                   schedule_float("rho", 1.0, 100.0)},
                  {"SIGMAS"}),
      custom_node("SDTurboScheduler", category,
                  {typed("model", "MODEL"), int_input("steps", 1, 1, 10),
                   // ComfyUI's minimum here is the Python int 0.
                   typed("denoise", "FLOAT",
                         {{"default", 1.0}, {"min", 0}, {"max", 1.0}, {"step", 0.01}})},
                  {"SIGMAS"}),
  };
}

NodeSchema ksampler_select() {
  return custom_node("KSamplerSelect", "sampling/samplers",
                     {context_combo("sampler_name", graph::ComboSource::kSamplers)}, {"SAMPLER"});
}

// SplitSigmas and SplitSigmasDenoise: two SIGMAS named high_sigmas and low_sigmas.
NodeSchema split_node(std::string name, InputSpec where) {
  NodeSchema s = custom_node(std::move(name), "sampling/sigmas",
                             {typed("sigmas", "SIGMAS"), std::move(where)}, {});
  set_named_outputs(s, {"SIGMAS", "SIGMAS"}, {"high_sigmas", "low_sigmas"});
  return s;
}

std::vector<NodeSchema> sigma_tools() {
  return {split_node("SplitSigmas", int_input("step", 0, 0, 10000)),
          split_node("SplitSigmasDenoise", denoise_input()),
          custom_node("FlipSigmas", "sampling/sigmas", {typed("sigmas", "SIGMAS")}, {"SIGMAS"})};
}

std::vector<NodeSchema> guiders() {
  const char* category = "sampling/guiders";
  return {
      custom_node("CFGGuider", category,
                  {typed("model", "MODEL"), typed("positive", "CONDITIONING"),
                   typed("negative", "CONDITIONING"), cfg_input("cfg")},
                  {"GUIDER"}, "CFG Guider"),
      custom_node("DualCFGGuider", category,
                  {typed("model", "MODEL"), typed("cond1", "CONDITIONING"),
                   typed("cond2", "CONDITIONING"), typed("negative", "CONDITIONING"),
                   cfg_input("cfg_conds"), cfg_input("cfg_cond2_negative"),
                   combo("style", {"regular", "nested"})},
                  {"GUIDER"}, "Dual CFG Guider"),
      custom_node("BasicGuider", category,
                  {typed("model", "MODEL"), typed("conditioning", "CONDITIONING")}, {"GUIDER"},
                  "Basic Guider"),
  };
}

std::vector<NodeSchema> noises() {
  return {custom_node("RandomNoise", "sampling/noise", {seed_input("noise_seed")}, {"NOISE"}),
          custom_node("DisableNoise", "sampling/noise", {}, {"NOISE"})};
}

}  // namespace

// Registered in the order of ComfyUI's extension (the nodes Dream Forge has).
void add_custom_sampling_schemas(graph::NodeSchemaRegistry& registry) {
  registry.add(sampler_custom());
  for (NodeSchema& s : schedulers()) registry.add(std::move(s));
  registry.add(ksampler_select());
  for (NodeSchema& s : sigma_tools()) registry.add(std::move(s));
  for (NodeSchema& s : guiders()) registry.add(std::move(s));
  for (NodeSchema& s : noises()) registry.add(std::move(s));
  registry.add(sampler_custom_advanced());
}

}  // namespace df::nodes

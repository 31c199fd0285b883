// Sampling node schemas (KSampler, custom sampling, samplers, schedulers, sigmas, guiders).
#include "nodes/packs/node_packs.h"
#include "nodes/packs/schema_builders.h"

namespace df::nodes {
namespace {

using graph::NodeSchema;
using namespace schema;

const char* const kSamplerTooltip =
    "The algorithm used when sampling, this can affect the quality, speed, and style of the "
    "generated output.";
const char* const kSchedulerTooltip =
    "The scheduler controls how noise is gradually removed to form the image.";
const char* const kCfgTooltip =
    "The Classifier-Free Guidance scale balances creativity and adherence to the prompt. Higher "
    "values result in images more closely matching the prompt however too high values will "
    "negatively impact quality.";

NodeSchema ksampler() {
  NodeSchema s;
  s.name = "KSampler";
  s.display_name = "KSampler";
  s.description =
      "Uses the provided model, positive and negative conditioning to denoise the latent image.";
  s.category = "sampling";
  s.required = {
      typed("model", "MODEL", tooltip("The model used for denoising the input latent.")),
      typed("seed", "INT",
            {{"default", 0},
             {"min", 0},
             {"max", kSeedMax},
             {"control_after_generate", true},
             {"tooltip", "The random seed used for creating the noise."}}),
      typed("steps", "INT",
            {{"default", 20},
             {"min", 1},
             {"max", 10000},
             {"tooltip", "The number of steps used in the denoising process."}}),
      typed("cfg", "FLOAT",
            {{"default", 8.0},
             {"min", 0.0},
             {"max", 100.0},
             {"step", 0.1},
             {"round", 0.01},
             {"tooltip", kCfgTooltip}}),
      context_combo("sampler_name", graph::ComboSource::kSamplers, tooltip(kSamplerTooltip)),
      context_combo("scheduler", graph::ComboSource::kSchedulers, tooltip(kSchedulerTooltip)),
      typed("positive", "CONDITIONING",
            tooltip("The conditioning describing the attributes you want to include in the "
                    "image.")),
      typed("negative", "CONDITIONING",
            tooltip("The conditioning describing the attributes you want to exclude from the "
                    "image.")),
      typed("latent_image", "LATENT", tooltip("The latent image to denoise.")),
      typed("denoise", "FLOAT",
            {{"default", 1.0},
             {"min", 0.0},
             {"max", 1.0},
             {"step", 0.01},
             {"tooltip",
              "The amount of denoising applied, lower values will maintain the structure of the "
              "initial image allowing for image to image sampling."}})};
  set_outputs(s, {"LATENT"});
  s.output_tooltips = {"The denoised latent."};
  return s;
}

NodeSchema ksampler_advanced() {
  NodeSchema s;
  s.name = "KSamplerAdvanced";
  s.display_name = "KSampler (Advanced)";
  s.category = "sampling";
  s.required = {
      typed("model", "MODEL"),
      combo("add_noise", {"enable", "disable"}),
      typed("noise_seed", "INT",
            {{"default", 0}, {"min", 0}, {"max", kSeedMax}, {"control_after_generate", true}}),
      typed("steps", "INT", {{"default", 20}, {"min", 1}, {"max", 10000}}),
      typed("cfg", "FLOAT",
            {{"default", 8.0}, {"min", 0.0}, {"max", 100.0}, {"step", 0.1}, {"round", 0.01}}),
      context_combo("sampler_name", graph::ComboSource::kSamplers),
      context_combo("scheduler", graph::ComboSource::kSchedulers),
      typed("positive", "CONDITIONING"),
      typed("negative", "CONDITIONING"),
      typed("latent_image", "LATENT"),
      typed("start_at_step", "INT", {{"default", 0}, {"min", 0}, {"max", 10000}}),
      typed("end_at_step", "INT", {{"default", 10000}, {"min", 0}, {"max", 10000}}),
      combo("return_with_leftover_noise", {"disable", "enable"})};
  set_outputs(s, {"LATENT"});
  return s;
}

}  // namespace

void add_custom_sampling_schemas(graph::NodeSchemaRegistry& registry);  // custom_schemas.cpp

void add_sampling_schemas(graph::NodeSchemaRegistry& registry) {
  registry.add(ksampler());
  registry.add(ksampler_advanced());
  add_custom_sampling_schemas(registry);
}

}  // namespace df::nodes

// Probe commands for the FLUX.1 transformer: forward from any supported weights layout, conversion
// to BFL names, its tensor layouts and tiny files in both namings.
#include <string>

#include "engine/family/flux/flux_diffusers_writer.h"
#include "engine/family/flux/flux_layout.h"
#include "engine/family/flux/flux_transformer.h"
#include "engine/family/flux/flux_weights.h"
#include "engine/safetensors.h"
#include "engine/tiny_model.h"
#include "probe.h"

namespace df::probe {
namespace {

using engine::TensorMap;
using nlohmann::json;

engine::flux::FluxTransformerWeights load(const json& args) {
  return engine::flux::load_flux_transformer(args.at("weights").get<std::string>(), at::kFloat);
}

// x, timestep, context, pooled and optional guidance -> "out" (the velocity, unpacked).
TensorMap flux_forward(const json& args, const TensorMap& in) {
  auto weights = load(args);
  const engine::flux::FluxTransformer model(weights.config,
                                            engine::Weights(std::move(weights.tensors)));
  engine::NetworkInputs inputs;
  inputs.context = in.at("context");
  inputs.pooled = in.at("pooled");
  if (in.count("guidance")) inputs.guidance = in.at("guidance");
  return {{"out", model.forward(in.at("x"), in.at("timestep"), inputs)}};
}

// Writes the weights under BFL names to args["out"].
TensorMap flux_to_bfl(const json& args, const TensorMap&) {
  engine::save_safetensors(args.at("out").get<std::string>(), load(args).tensors);
  return {};
}

// The tensor layout of args["config"] (FluxTransformer2DModel's config.json) in BFL names, or in
// diffusers names with "naming": "diffusers": one int64 tensor holding each tensor's shape.
TensorMap flux_layout(const json& args, const TensorMap&) {
  const auto config = engine::flux::FluxConfig::from_diffusers_json(args.at("config"));
  auto layout = engine::flux::flux_transformer_layout(config);
  if (args.value("naming", "bfl") == "diffusers") {
    layout = engine::flux::assembled_layout(layout, engine::flux::flux_diffusers_from_bfl(config));
  }
  TensorMap out;
  for (const auto& tensor : layout) {
    out.emplace(tensor.name, at::tensor(at::IntArrayRef(tensor.shape), at::kLong));
  }
  return out;
}

// Tiny random weights of tiny_flux_config(args["guidance"]) from args["seed"], written as a BFL
// file args["bfl"] and as a diffusers folder args["diffusers"].
TensorMap flux_write_tiny(const json& args, const TensorMap&) {
  const auto config = engine::flux::tiny_flux_config(args.at("guidance").get<bool>());
  const auto bfl = engine::tiny_random_tensors(engine::flux::flux_transformer_layout(config),
                                               args.at("seed").get<uint64_t>(), 0.2);
  engine::write_safetensors(args.at("bfl").get<std::string>(), bfl);
  engine::flux::write_flux_diffusers_transformer(args.at("diffusers").get<std::string>(), config,
                                                 bfl);
  return {};
}

}  // namespace

DF_PROBE_COMMAND("flux_forward", flux_forward);
DF_PROBE_COMMAND("flux_to_bfl", flux_to_bfl);
DF_PROBE_COMMAND("flux_layout", flux_layout);
DF_PROBE_COMMAND("flux_write_tiny", flux_write_tiny);

}  // namespace df::probe

// Probe commands for the Z-Image transformer: one forward call from a weights file or diffusers
// folder, the tensor layout of a config, and a tiny random diffusers folder.
#include <filesystem>
#include <fstream>
#include <string>

#include "engine/family/zimage/zimage_layout.h"
#include "engine/family/zimage/zimage_transformer.h"
#include "engine/safetensors_file.h"
#include "engine/tiny_model.h"
#include "probe.h"

namespace df::probe {
namespace {

using engine::TensorMap;
using nlohmann::json;

// args: weights (file or diffusers transformer folder); inputs: x [B, 16, H, W], timestep [B]
// (sigma), context [B, L, C] and optionally context_mask [B, L]. outputs: "out", the velocity.
TensorMap zimage_forward(const json& args, const TensorMap& in) {
  at::InferenceMode guard;
  const auto transformer = engine::zimage::load_zimage_transformer(
      args.at("weights").get<std::string>(), at::kCPU, at::kFloat);
  engine::NetworkInputs inputs;
  inputs.context = in.at("context");
  if (in.count("context_mask")) inputs.context_mask = in.at("context_mask");
  return {{"out", transformer->forward(in.at("x"), in.at("timestep"), inputs)}};
}

// args: config (a diffusers config.json object), naming ("comfy" or "diffusers"). outputs: one
// int64 tensor per layout entry holding its shape; nothing is allocated at the layout's size.
TensorMap zimage_layout(const json& args, const TensorMap&) {
  const auto config = engine::zimage::ZImageConfig::from_diffusers_json(args.at("config"));
  const auto layout = args.value("naming", std::string("comfy")) == "diffusers"
                          ? engine::zimage::zimage_diffusers_layout(config)
                          : engine::zimage::zimage_transformer_layout(config);
  TensorMap out;
  for (const auto& tensor : layout) {
    out.emplace(tensor.name, at::tensor(tensor.shape, at::kLong));
  }
  return out;
}

// args: dir, seed, cap_feat_dim. Writes the tiny config's random weights (drawn in the ComfyUI
// layout) as a diffusers transformer folder: config.json and diffusion_pytorch_model.safetensors.
TensorMap zimage_write_tiny(const json& args, const TensorMap&) {
  namespace zi = engine::zimage;
  const zi::ZImageConfig config = zi::tiny_zimage_config(args.value("cap_feat_dim", 32));
  const std::filesystem::path dir = args.at("dir").get<std::string>();
  std::filesystem::create_directories(dir);
  const auto comfy = engine::tiny_random_tensors(zi::zimage_transformer_layout(config),
                                                 args.value("seed", 0), 0.1);
  engine::write_safetensors((dir / "diffusion_pytorch_model.safetensors").string(),
                            zi::raw_tensors_to_diffusers(comfy, config));
  std::ofstream(dir / "config.json") << config.to_diffusers_json().dump(2);
  return {};
}

DF_PROBE_COMMAND("zimage_forward", zimage_forward);
DF_PROBE_COMMAND("zimage_write_tiny", zimage_write_tiny);
DF_PROBE_COMMAND("zimage_layout", zimage_layout);

}  // namespace
}  // namespace df::probe

// Probe commands for the network components: CLIP text encoder, UNet and VAE, each loaded straight
// from a diffusers pipeline folder's component directory.
#include <fstream>
#include <string>

#include "core/error.h"
#include "engine/clip_text.h"
#include "engine/safetensors.h"
#include "engine/unet.h"
#include "engine/vae.h"
#include "probe.h"

namespace df::probe {
namespace {

using engine::TensorMap;
using engine::Weights;
using nlohmann::json;

json read_config(const std::string& dir) {
  std::ifstream in(dir + "/config.json");
  if (!in) throw Error(ErrorCode::kIo, "cannot read " + dir + "/config.json");
  return json::parse(in);
}

at::ScalarType dtype_arg(const json& args) {
  const std::string name = args.value("dtype", "float32");
  if (name == "float32") return at::kFloat;
  if (name == "float16") return at::kHalf;
  if (name == "bfloat16") return at::kBFloat16;
  throw Error(ErrorCode::kInvalidArgument, "unknown dtype '" + name + "'");
}

// The component's tensors, with `strip` removed from the front of names that have it, converted
// to the "dtype" and "device" of args.
Weights load_weights(const json& args, const std::string& file, const std::string& strip = "") {
  TensorMap stored = engine::load_safetensors(args.at("path").get<std::string>() + "/" + file);
  TensorMap renamed;
  for (auto& [name, tensor] : stored) {
    const bool prefixed = !strip.empty() && name.rfind(strip, 0) == 0;
    renamed.emplace(prefixed ? name.substr(strip.size()) : name, std::move(tensor));
  }
  Weights weights(std::move(renamed));
  weights.to(dtype_arg(args), at::Device(args.value("device", "cpu")));
  return weights;
}

at::Tensor result(const at::Tensor& t) { return t.to(at::kCPU, at::kFloat); }

TensorMap clip_text(const json& args, const TensorMap& in) {
  const std::string dir = args.at("path").get<std::string>();
  const auto config = engine::ClipTextConfig::from_json(read_config(dir));
  const engine::ClipTextModel model(config, load_weights(args, "model.safetensors", "text_model."));
  const auto out = model.forward(in.at("ids"), args.value("eos_token_id", config.eos_token_id));
  return {{"last_hidden_state", result(out.last_hidden_state)},
          {"penultimate", result(out.hidden_states.at(out.hidden_states.size() - 2))},
          {"pooled", result(out.pooled)}};
}

TensorMap unet(const json& args, const TensorMap& in) {
  const std::string dir = args.at("path").get<std::string>();
  const engine::UNet model(engine::UNetConfig::from_json(read_config(dir)),
                           load_weights(args, "diffusion_pytorch_model.safetensors"));
  std::optional<engine::UNetAddedConditioning> added;
  if (in.count("text_embeds") || in.count("time_ids")) {
    added = engine::UNetAddedConditioning{in.at("text_embeds"), in.at("time_ids")};
  }
  return {{"out", result(model.forward(in.at("sample"), in.at("timesteps"), in.at("context"),
                                       added))}};
}

engine::Vae load_vae(const json& args) {
  const std::string dir = args.at("path").get<std::string>();
  return engine::Vae(engine::VaeConfig::from_json(read_config(dir)),
                     load_weights(args, "diffusion_pytorch_model.safetensors"));
}

TensorMap vae_encode(const json& args, const TensorMap& in) {
  const auto moments = load_vae(args).encode(in.at("image"));
  return {{"mean", result(moments.mean)}, {"logvar", result(moments.logvar)}};
}

TensorMap vae_decode(const json& args, const TensorMap& in) {
  return {{"image", result(load_vae(args).decode(in.at("latents")))}};
}

DF_PROBE_COMMAND("clip_text", clip_text);
DF_PROBE_COMMAND("unet", unet);
DF_PROBE_COMMAND("vae_encode", vae_encode);
DF_PROBE_COMMAND("vae_decode", vae_decode);

}  // namespace
}  // namespace df::probe

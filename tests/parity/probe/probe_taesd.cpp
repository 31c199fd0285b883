// Probe commands for the Tiny AutoEncoder (TAESD) behind VAELoader's "taesd"/"taesdxl".
#include <string>

#include "engine/checkpoint_bundle.h"
#include "engine/safetensors.h"
#include "engine/taesd.h"
#include "probe.h"

namespace df::probe {
namespace {

using engine::TensorMap;
using nlohmann::json;

// The float32 CPU autoencoder of args["encoder"] and args["decoder"] (TAESD's own files) with
// args["latent_scale"].
engine::TinyAutoencoder tiny_autoencoder(const json& args) {
  return engine::TinyAutoencoder(
      engine::Weights(engine::load_safetensors(args.at("encoder").get<std::string>())),
      engine::Weights(engine::load_safetensors(args.at("decoder").get<std::string>())),
      args.at("latent_scale").get<double>());
}

// latents -> "raw" (the network's [-1, 1] image, [B,3,H,W]) and "image" (VAEDecode's [B,H,W,3]).
TensorMap taesd_decode(const json& args, const TensorMap& in) {
  const engine::TinyAutoencoder taesd = tiny_autoencoder(args);
  const at::Tensor& latents = in.at("latents");
  at::Tensor raw = taesd.decode(latents);
  const engine::VaeCodec codec(taesd, engine::RuntimePlacement{});
  return {{"raw", raw}, {"image", codec.decode(latents)}};
}

// VAEEncode's image [B,H,W,3] in [0, 1] -> "latents" (unscaled).
TensorMap taesd_encode(const json& args, const TensorMap& in) {
  const engine::VaeCodec codec(tiny_autoencoder(args), engine::RuntimePlacement{});
  return {{"latents", codec.encode(in.at("image"))}};
}

}  // namespace

DF_PROBE_COMMAND("taesd_decode", taesd_decode);
DF_PROBE_COMMAND("taesd_encode", taesd_encode);

}  // namespace df::probe

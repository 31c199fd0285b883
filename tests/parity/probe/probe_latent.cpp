// Probe commands for VAEDecodeTiled's and VAEEncodeTiled's tiled passes over a diffusers VAE folder.
#include <fstream>
#include <string>

#include "core/error.h"
#include "engine/checkpoint_bundle.h"
#include "engine/safetensors.h"
#include "engine/vae.h"
#include "nodes/latent_ops.h"
#include "probe.h"

namespace df::probe {
namespace {

using engine::TensorMap;
using nlohmann::json;

// The float32 CPU codec of the VAE in args["path"] (config.json and its safetensors weights).
engine::VaeCodec vae_codec(const json& args) {
  const std::string dir = args.at("path").get<std::string>();
  std::ifstream config(dir + "/config.json");
  if (!config) throw Error(ErrorCode::kIo, "cannot read " + dir + "/config.json");
  engine::Vae vae(engine::VaeConfig::from_json(json::parse(config)),
                  engine::Weights(engine::load_safetensors(dir + "/diffusion_pytorch_model.safetensors")));
  return engine::VaeCodec(std::move(vae), engine::RuntimePlacement{});
}

TensorMap vae_decode_tiled(const json& args, const TensorMap& in) {
  return {{"image", nodes::decode_tiled(vae_codec(args), in.at("latents"),
                                        args.at("tile_size").get<int64_t>(),
                                        args.at("overlap").get<int64_t>())}};
}

TensorMap vae_encode_tiled(const json& args, const TensorMap& in) {
  return {{"latents", nodes::encode_tiled(vae_codec(args), in.at("image"),
                                          args.at("tile_size").get<int64_t>(),
                                          args.at("overlap").get<int64_t>())}};
}

}  // namespace

DF_PROBE_COMMAND("vae_decode_tiled", vae_decode_tiled);
DF_PROBE_COMMAND("vae_encode_tiled", vae_encode_tiled);

}  // namespace df::probe

// Probe commands for the Tiny AutoEncoder (TAESD) behind VAELoader's "taesd"/"taesdxl" and the
// live previews.
#include <string>

#include "bench_timing.h"
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

// args {"encoder", "decoder", "steps", "height", "width" (latent pixels)} -> step_seconds [steps]:
// one decode of a random latent each through the codec a TAESD preview uses (CPU, float32).
TensorMap bench_taesd_decode(const json& args, const TensorMap&) {
  const auto codec = engine::load_tiny_vae_codec(args.at("encoder").get<std::string>(),
                                                 args.at("decoder").get<std::string>(), 0.18215,
                                                 "cpu");
  const int steps = args.value("steps", 4);
  const at::Tensor latents = at::randn({1, 4, args.value("height", 64), args.value("width", 64)});
  at::Tensor step_seconds = at::empty({steps}, at::kDouble);
  for (int i = 0; i < steps; ++i) {
    const auto start = BenchClock::now();
    const at::Tensor pixels = codec->decode(latents);
    step_seconds[i] = seconds_since(start);
  }
  return {{"step_seconds", step_seconds}};
}

}  // namespace

DF_PROBE_COMMAND("taesd_decode", taesd_decode);
DF_PROBE_COMMAND("bench_taesd_decode", bench_taesd_decode);
DF_PROBE_COMMAND("taesd_encode", taesd_encode);

}  // namespace df::probe

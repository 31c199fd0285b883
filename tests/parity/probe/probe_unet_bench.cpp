// Probe command "bench_unet": times the engine's UNet steps on a device, from a diffusers UNet folder.
#include <fstream>

#include "bench_timing.h"
#include "core/error.h"
#include "engine/model_config.h"
#include "engine/safetensors.h"
#include "engine/unet.h"
#include "probe.h"

namespace {

using df::probe::BenchClock;
using df::probe::peak_rss_mb;
using df::probe::seconds_since;

at::ScalarType dtype_named(const std::string& name) {
  if (name == "float32") return at::kFloat;
  if (name == "float16") return at::kHalf;
  if (name == "bfloat16") return at::kBFloat16;
  throw df::Error(df::ErrorCode::kInvalidArgument, "unknown dtype '" + name + "'");
}

// args: {"path" (diffusers unet folder), "device", "dtype", "steps", "batch", "height", "width"
// (pixels)}; outputs: load_seconds [1], step_seconds [steps], peak_rss_mb [1]. Each step ends when
// its output has reached the host, so on a GPU a step's time is its kernels' time, not their launch.
df::engine::TensorMap bench_unet(const nlohmann::json& args, const df::engine::TensorMap&) {
  at::InferenceMode guard;
  const std::string dir = args.at("path").get<std::string>();
  const at::Device device(args.value("device", std::string("cpu")));
  const at::ScalarType dtype = dtype_named(args.value("dtype", std::string("bfloat16")));
  std::ifstream config_file(dir + "/config.json");
  if (!config_file) throw df::Error(df::ErrorCode::kIo, "cannot read " + dir + "/config.json");
  const auto config = df::engine::UNetConfig::from_json(nlohmann::json::parse(config_file));

  const auto load_start = BenchClock::now();
  df::engine::Weights weights(
      df::engine::load_safetensors(dir + "/diffusion_pytorch_model.safetensors"));
  weights.to(dtype, device);
  const df::engine::UNet unet(config, std::move(weights));
  const double load_seconds = seconds_since(load_start);

  const int steps = args.value("steps", 3);
  const int64_t batch = args.value("batch", 1);
  const int64_t height = args.value("height", 1024), width = args.value("width", 1024);
  const auto options = at::TensorOptions().device(device).dtype(dtype);
  const at::Tensor sample = at::randn({batch, config.in_channels, height / 8, width / 8}, options);
  const at::Tensor context = at::randn({batch, 77, config.cross_attention_dim}, options);
  std::optional<df::engine::UNetAddedConditioning> added;
  if (config.addition_embed_type == "text_time") {
    const int64_t pooled =
        config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim;
    const double h = static_cast<double>(height), w = static_cast<double>(width);
    added = df::engine::UNetAddedConditioning{
        at::randn({batch, pooled}, options),
        at::tensor({h, w, 0.0, 0.0, h, w}, at::kFloat).repeat({batch, 1}).to(device)};
  }
  at::Tensor step_seconds = at::empty({steps}, at::kDouble);
  for (int i = 0; i < steps; ++i) {
    const at::Tensor t = at::full({batch}, 999.0 - 30.0 * i, at::TensorOptions().device(device));
    const auto start = BenchClock::now();
    const at::Tensor out = unet.forward(sample, t, context, added);
    out.flatten()[0].item<double>();  // waits for the device
    step_seconds[i] = seconds_since(start);
  }
  return {{"load_seconds", at::full({1}, load_seconds, at::kDouble)},
          {"step_seconds", step_seconds},
          {"peak_rss_mb", at::full({1}, peak_rss_mb(), at::kDouble)}};
}

DF_PROBE_COMMAND("bench_unet", bench_unet);

}  // namespace

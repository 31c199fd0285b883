// Probe command "bench_pipeline": loads a checkpoint through the engine and times UNet steps.
#include <chrono>

#include "engine/checkpoint_bundle.h"
#include "bench_timing.h"
#include "probe.h"

namespace {

using df::probe::BenchClock;
using df::probe::peak_rss_mb;
using df::probe::seconds_since;

// args: {"path", "steps", "batch", "height", "width", "dtype" (float32 | bfloat16)}; outputs:
// load_seconds [1], step_seconds [steps], peak_rss_mb [1].
df::engine::TensorMap bench_pipeline(const nlohmann::json& args, const df::engine::TensorMap&) {
  at::InferenceMode guard;
  const auto load_start = BenchClock::now();
  df::engine::CheckpointBundle bundle = df::engine::load_checkpoint_bundle(
      {args.at("path").get<std::string>(), args.value("device", "cpu"),
       args.value("dtype", std::string("float32")), ""});
  const double load_seconds = seconds_since(load_start);

  const int steps = args.value("steps", 3);
  const int64_t batch = args.value("batch", 2);
  const int64_t h = args.value("height", 512) / 8, w = args.value("width", 512) / 8;
  const auto& unet = *bundle.model->unet;
  at::Tensor sample = at::randn({batch, 4, h, w});
  at::Tensor context = at::randn({batch, 77, unet.config().cross_attention_dim});
  at::Tensor step_seconds = at::empty({steps}, at::kDouble);
  for (int i = 0; i < steps; ++i) {
    at::Tensor t = at::full({batch}, 999.0 - 50.0 * i, at::kFloat);
    const auto start = BenchClock::now();
    at::Tensor out = unet.forward(sample, t, context);
    step_seconds[i] = seconds_since(start);
  }
  return {{"load_seconds", at::full({1}, load_seconds, at::kDouble)},
          {"step_seconds", step_seconds},
          {"peak_rss_mb", at::full({1}, peak_rss_mb(), at::kDouble)}};
}

DF_PROBE_COMMAND("bench_pipeline", bench_pipeline);

}  // namespace

// Probe command "bench_zimage_step": loads a Z-Image transformer and times its forward calls.
#include <chrono>
#include <string>

#include "engine/family/zimage/zimage_transformer.h"
#include "bench_timing.h"
#include "probe.h"

namespace df::probe {
namespace {

// args {"weights" (file or diffusers transformer folder), "dtype": "bfloat16"|"float32", "steps",
// "height", "width", "caption_tokens"} -> load_seconds [1], step_seconds [steps] (one transformer
// call each on random inputs, batch 1), peak_rss_mb [1].
engine::TensorMap bench_zimage_step(const nlohmann::json& args, const engine::TensorMap&) {
  at::InferenceMode guard;
  const at::ScalarType dtype =
      args.value("dtype", std::string("bfloat16")) == "float32" ? at::kFloat : at::kBFloat16;
  const auto load_start = BenchClock::now();
  const auto transformer = engine::zimage::load_zimage_transformer(
      args.at("weights").get<std::string>(), at::kCPU, dtype);
  const double load_seconds = seconds_since(load_start);

  const int steps = args.value("steps", 2);
  const int64_t h = args.value("height", 256) / 8, w = args.value("width", 256) / 8;
  const int64_t tokens = args.value("caption_tokens", 32);
  const at::Tensor x = at::randn({1, 16, h, w});
  engine::NetworkInputs inputs;
  inputs.context = at::randn({1, tokens, transformer->config().cap_feat_dim});
  at::Tensor step_seconds = at::empty({steps}, at::kDouble);
  for (int i = 0; i < steps; ++i) {
    const at::Tensor sigma = at::full({1}, 1.0 - 0.25 * i, at::kFloat);
    const auto start = BenchClock::now();
    const at::Tensor out = transformer->forward(x, sigma, inputs);
    step_seconds[i] = seconds_since(start);
  }
  return {{"load_seconds", at::full({1}, load_seconds, at::kDouble)},
          {"step_seconds", step_seconds},
          {"peak_rss_mb", at::full({1}, peak_rss_mb(), at::kDouble)}};
}

DF_PROBE_COMMAND("bench_zimage_step", bench_zimage_step);

}  // namespace
}  // namespace df::probe

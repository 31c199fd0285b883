// Probe commands for fp8 weights: a DiT forward call from a diffusion model file loaded as
// UNETLoader loads it (optionally with fp8 weight storage), and the memory that load keeps.
#include <malloc.h>

#include <fstream>
#include <stdexcept>
#include <string>

#include "engine/family/dit_models.h"
#include "engine/fp8_weights.h"
#include "probe.h"

namespace df::probe {
namespace {

using engine::TensorMap;
using nlohmann::json;

// The DiffusionModel of args.weights (a DiT family's file) on the CPU in args.dtype ("float32"
// or "bfloat16"), with args.weight_dtype as UNETLoader's.
std::shared_ptr<const engine::DiffusionModel> load_model(const json& args) {
  engine::RuntimePlacement placement;
  placement.dtype = args.value("dtype", std::string("float32")) == "bfloat16" ? at::kBFloat16
                                                                               : at::kFloat;
  const std::string path = args.at("weights").get<std::string>();
  const auto family = engine::detect_dit_family(path);
  if (!family) throw std::runtime_error("'" + path + "' holds no DiT diffusion model");
  return engine::load_dit_model(
      path, *family, placement,
      engine::fp8_weight_storage(args.value("weight_dtype", std::string("default"))));
}

// args: see load_model; inputs: x, timestep, context and optionally context_mask, as the
// family's network takes them. outputs: "out", the network's raw prediction.
TensorMap dit_forward(const json& args, const TensorMap& in) {
  at::InferenceMode guard;
  const auto model = load_model(args);
  engine::NetworkInputs inputs;
  inputs.context = in.at("context");
  if (in.count("context_mask")) inputs.context_mask = in.at("context_mask");
  return {{"out", model->network->forward(in.at("x"), in.at("timestep"), inputs)}};
}

// This process's anonymous resident memory in KiB (Linux's RssAnon), 0 where unknown.
int64_t rss_anon_kib() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "RssAnon:") {
      int64_t kib = 0;
      status >> kib;
      return kib;
    }
    status.ignore(1 << 12, '\n');
  }
  return 0;
}

// args: see load_model. outputs: "rss_anon_kib" [before, after] the load, while the model lives;
// the heap's free pages (the load's temporaries) are handed back first, so "after" counts what
// the model keeps rather than the load's high-water mark.
TensorMap dit_load_memory(const json& args, const TensorMap&) {
  at::InferenceMode guard;
  ::malloc_trim(0);
  const int64_t before = rss_anon_kib();
  const auto model = load_model(args);
  ::malloc_trim(0);
  const int64_t after = rss_anon_kib();
  return {{"rss_anon_kib", at::tensor({before, after}, at::kLong)}};
}

DF_PROBE_COMMAND("dit_forward", dit_forward);
DF_PROBE_COMMAND("dit_load_memory", dit_load_memory);

}  // namespace
}  // namespace df::probe

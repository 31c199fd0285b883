// Pre-warming a native runner's model cache with the smallest graph that loads a checkpoint.
#include "worker/prewarm.h"

#include <chrono>

#include "runner/protocol_messages.h"
#include "telemetry/service_log.h"
#include "worker/runner_supervisor.h"

namespace df::worker {
namespace {

bool has_16_channel_latents(const std::string& family) {
  return family == "flux" || family == "flux_schnell" || family == "sd3" || family == "zimage";
}

// Runs the warm-up of `model`; "" when it succeeded, else why not.
std::string warm(RunnerSupervisor& runner, const PrewarmModel& model, const std::string& temp_dir,
                 int timeout_ms) {
  runner::RunRequest run;
  run.id = "prewarm/" + model.ckpt_name;
  run.graph = prewarm_graph(model);
  run.output_dir = temp_dir;
  run.temp_dir = temp_dir;
  auto& process = runner.ensure_started();
  process.send(runner::to_json(runner::Request{run}));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string error;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    const auto message = left.count() > 0 ? process.next_event(static_cast<int>(left.count()))
                                          : std::nullopt;
    if (!message) {
      runner.stop();
      return "no answer within " + std::to_string(timeout_ms) + " ms (the runner was stopped)";
    }
    const runner::Event event = runner::parse_event(*message);
    if (const auto* failed = std::get_if<runner::ErrorEvent>(&event)) error = failed->message;
    if (const auto* finished = std::get_if<runner::RunFinishedEvent>(&event)) {
      if (finished->id != run.id) continue;
      return finished->status == "succeeded" ? "" : error.empty() ? finished->status : error;
    }
  }
}

}  // namespace

nlohmann::json prewarm_graph(const PrewarmModel& model) {
  const char* latent = has_16_channel_latents(model.family) ? "EmptySD3LatentImage" : "EmptyLatentImage";
  return {{"1", {{"class_type", "CheckpointLoaderSimple"}, {"inputs", {{"ckpt_name", model.ckpt_name}}}}},
          {"2", {{"class_type", latent}, {"inputs", {{"width", 64}, {"height", 64}, {"batch_size", 1}}}}},
          {"3", {{"class_type", "VAEDecode"},
                 {"inputs", {{"samples", {"2", 0}}, {"vae", {"1", 2}}}}}},
          {"4", {{"class_type", "PreviewImage"}, {"inputs", {{"images", {"3", 0}}}}}}};
}

std::vector<std::string> prewarm(RunnerSupervisor& runner, const std::vector<PrewarmModel>& models,
                                 const std::string& temp_dir, int timeout_ms) {
  std::vector<std::string> warm_models;
  for (const auto& model : models) {
    std::string error;
    try {
      error = warm(runner, model, temp_dir, timeout_ms);
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (error.empty()) {
      warm_models.push_back(model.ckpt_name);
    } else {
      telemetry::service_log().error("prewarm: " + model.ckpt_name + " was not loaded: " + error);
    }
  }
  return warm_models;
}

}  // namespace df::worker

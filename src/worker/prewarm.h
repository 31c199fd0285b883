// Pre-warming: a native runner loads the routing table's `prewarm` models into its model cache when
// it starts, before any job asks for them.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace df::worker {

class RunnerSupervisor;

// A model to keep warm: its checkpoint file as CheckpointLoaderSimple names it, and its family.
struct PrewarmModel {
  std::string ckpt_name;
  std::string family;  // sd1 | sd2 | sdxl | sdxl_refiner | flux | flux_schnell | sd3 | zimage
  bool operator==(const PrewarmModel&) const = default;
};

// The smallest graph that loads `model` under ComfyUI's semantics (only what an output node needs
// runs): CheckpointLoaderSimple, its VAE decoding an empty 64x64 latent of the family's channels
// (EmptyLatentImage, or EmptySD3LatentImage for the 16-channel families) into a PreviewImage.
nlohmann::json prewarm_graph(const PrewarmModel& model);

// Runs prewarm_graph for each model on `runner` (started when it does not run), one after another,
// each bounded by `timeout_ms`; previews go to `temp_dir`. Returns the checkpoints now warm; one
// that fails is logged and left out (a warm-up never stops the worker).
std::vector<std::string> prewarm(RunnerSupervisor& runner, const std::vector<PrewarmModel>& models,
                                 const std::string& temp_dir, int timeout_ms);

}  // namespace df::worker

// Follows one job's Dream Forge events and says which DGX-Pixels updates they make.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/job.h"

namespace df::pixels {

// The stages of one image, with the share of its progress each takes (2/10/3/80/4/1, as the
// original server weighs them).
enum class Stage { kInitializing, kLoadingModels, kEncoding, kSampling, kDecoding, kPostProcessing };
std::string_view stage_name(Stage stage);
double stage_weight(Stage stage);  // percent of an item; the six sum to 100
// The stage a node of this class works in: loaders load models, text encoders encode, samplers
// sample, VAE decoders decode, everything after decoding (saving, scaling) post-processes.
Stage stage_of_node(std::string_view class_type);

class JobUpdates {
 public:
  // `locate` turns an artifact's blob key into what a client opens (a local file path, or a signed
  // URL when the artifact store is not local). `items` is the job's item count (its spec's count);
  // an event naming a higher item index raises it.
  JobUpdates(std::string job_id, std::function<std::string(const std::string& key)> locate,
             int items = 1);

  // The updates one of the job's events makes, in order (most make none): job_started; progress
  // on node starts, sampling steps and items (percent over the whole batch, stage weights within an
  // item, eta_s from the pace so far, the event times being the clock); at job_finished the
  // job_finished update, then job_complete with the finished items' output artifacts or job_error. Events
  // come in id order; a job started again (a retry, a restarted server) starts its unfinished
  // items over.
  std::vector<nlohmann::ordered_json> on_event(const Event& event);
  // The preview update for a latent preview written to `image_path` (at the current step).
  nlohmann::ordered_json preview(const std::string& image_path) const;

  const std::string& job_id() const { return job_id_; }
  bool finished() const { return finished_; }
  int step() const { return step_; }

 private:
  // Where the running item stands, and its share of its own progress (0..100).
  void enter_item(int index);
  void enter_stage(Stage stage);
  double item_percent() const;
  double job_percent() const;
  double eta_seconds(int64_t now_ms, double percent) const;
  nlohmann::ordered_json progress_update(const Event& event) const;
  std::vector<nlohmann::ordered_json> finish(const Event& event);
  std::vector<std::string> located_outputs() const;

  std::string job_id_;
  std::function<std::string(const std::string& key)> locate_;
  int items_ = 1;
  bool finished_ = false;
  int step_ = 0;
  int total_steps_ = 0;
  std::optional<int64_t> first_started_ms_;  // the job's first start, for its duration
  int64_t attempt_started_ms_ = 0;
  double attempt_start_percent_ = 0;  // what earlier attempts had finished, for the pace
  std::optional<int> item_;           // the running item's index
  Stage stage_ = Stage::kInitializing;
  std::set<int> finished_items_;
  std::map<int, std::vector<std::string>> output_keys_;  // by item index, in arrival order
};

}  // namespace df::pixels

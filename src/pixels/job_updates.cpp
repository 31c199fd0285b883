// Turns one job's Dream Forge events into DGX-Pixels updates: started, staged progress, finished.
#include "pixels/job_updates.h"

#include <algorithm>
#include <array>

#include "pixels/pixels_messages.h"

namespace df::pixels {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

struct StageInfo {
  Stage stage;
  std::string_view name;
  double weight;
};

constexpr std::array<StageInfo, 6> kStages = {{{Stage::kInitializing, "initializing", 2},
                                               {Stage::kLoadingModels, "loading_models", 10},
                                               {Stage::kEncoding, "encoding", 3},
                                               {Stage::kSampling, "sampling", 80},
                                               {Stage::kDecoding, "decoding", 4},
                                               {Stage::kPostProcessing, "post_processing", 1}}};

const StageInfo& info(Stage stage) { return kStages[static_cast<size_t>(stage)]; }

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

bool is_sampler(std::string_view class_type) {
  return class_type == "KSampler" || class_type == "KSamplerAdvanced" ||
         class_type.starts_with("SamplerCustom");
}

bool works_on_images(std::string_view class_type) {
  return class_type.starts_with("Save") || class_type.starts_with("Preview") ||
         class_type.starts_with("Image");
}

double seconds_between(int64_t from_ms, int64_t to_ms) {
  return std::max<int64_t>(0, to_ms - from_ms) / 1000.0;
}

// An event's data field; null when the data has none.
json field(const Event& event, const char* key) {
  return event.data.is_object() ? event.data.value(key, json()) : json();
}

std::string text_field(const Event& event, const char* key) {
  const json value = field(event, key);
  return value.is_string() ? value.get<std::string>() : std::string();
}

int int_field(const Event& event, const char* key) {
  const json value = field(event, key);
  return value.is_number() ? value.get<int>() : 0;
}

// The message of a finished job's error ({code, message, details}), else the event's own.
std::string error_message(const Event& event) {
  const json error = field(event, "error");
  if (error.is_object() && error.contains("message") && error["message"].is_string()) {
    return error["message"].get<std::string>();
  }
  return event.message;
}

}  // namespace

std::string_view stage_name(Stage stage) { return info(stage).name; }

double stage_weight(Stage stage) { return info(stage).weight; }

Stage stage_of_node(std::string_view class_type) {
  if (is_sampler(class_type)) return Stage::kSampling;
  if (contains(class_type, "Loader")) return Stage::kLoadingModels;
  if (contains(class_type, "Decode")) return Stage::kDecoding;
  if (contains(class_type, "Encode")) return Stage::kEncoding;
  if (works_on_images(class_type)) return Stage::kPostProcessing;
  return Stage::kInitializing;
}

JobUpdates::JobUpdates(std::string job_id,
                       std::function<std::string(const std::string& key)> locate, int items)
    : job_id_(std::move(job_id)), locate_(std::move(locate)), items_(std::max(1, items)) {}

std::vector<ordered_json> JobUpdates::on_event(const Event& event) {
  if (event.type == "job_started") {
    // A new attempt runs the items not finished yet; what they had made before is dropped.
    std::erase_if(output_keys_,
                  [&](const auto& entry) { return !finished_items_.count(entry.first); });
    if (!first_started_ms_) first_started_ms_ = event.created_ms;
    attempt_started_ms_ = event.created_ms;
    attempt_start_percent_ = job_percent();
    item_.reset();
    stage_ = Stage::kInitializing;
    step_ = total_steps_ = 0;
    return {job_started(job_id_, event.created_ms / 1000)};
  }
  if (event.type == "job_finished") return finish(event);
  if (event.type == "artifact") {
    const std::string key = text_field(event, "key");
    if (text_field(event, "kind") == "output" && !key.empty()) {
      output_keys_[event.item_index.value_or(0)].push_back(key);
    }
    return {};
  }
  if (event.item_index && event.item_index != item_) enter_item(*event.item_index);
  if (event.type == "item_started") return {progress_update(event)};
  if (event.type == "node_started") {
    enter_stage(stage_of_node(text_field(event, "class_type")));
    return {progress_update(event)};
  }
  if (event.type == "progress") {
    enter_stage(Stage::kSampling);
    step_ = int_field(event, "step");
    total_steps_ = int_field(event, "total_steps");
    return {progress_update(event)};
  }
  if (event.type == "item_finished") {
    if (item_) finished_items_.insert(*item_);
    enter_stage(Stage::kPostProcessing);
    step_ = total_steps_;
    ordered_json update = progress_update(event);
    item_.reset();
    return {update};
  }
  return {};
}

ordered_json JobUpdates::preview(const std::string& image_path) const {
  return pixels::preview(job_id_, image_path, step_);
}

void JobUpdates::enter_item(int index) {
  item_ = index;
  items_ = std::max(items_, index + 1);
  stage_ = Stage::kInitializing;
  step_ = total_steps_ = 0;
}

// Stages only move on within an item (a decoder per tile does not go back from post-processing),
// and image nodes before the decoder (an init image's scaling) are not its post-processing yet.
void JobUpdates::enter_stage(Stage stage) {
  if (stage == Stage::kPostProcessing && stage_ < Stage::kDecoding) return;
  stage_ = std::max(stage_, stage);
}

double JobUpdates::item_percent() const {
  if (!item_ || finished_items_.count(*item_)) return 0;
  double percent = 0;
  for (const StageInfo& done : kStages) {
    if (done.stage == stage_) break;
    percent += done.weight;
  }
  const double fraction = stage_ == Stage::kSampling && total_steps_ > 0
                              ? std::clamp(static_cast<double>(step_) / total_steps_, 0.0, 1.0)
                              : 0.0;
  return percent + stage_weight(stage_) * fraction;
}

double JobUpdates::job_percent() const {
  const double done = static_cast<double>(finished_items_.size()) * 100.0;
  return std::clamp((done + item_percent()) / items_, 0.0, 100.0);
}

// The pace of this attempt so far, carried on to 100 percent; 0 while there is none.
double JobUpdates::eta_seconds(int64_t now_ms, double percent) const {
  const double gained = percent - attempt_start_percent_;
  if (gained <= 0) return 0;
  return seconds_between(attempt_started_ms_, now_ms) * (100.0 - percent) / gained;
}

ordered_json JobUpdates::progress_update(const Event& event) const {
  ProgressUpdate update;
  update.job_id = job_id_;
  update.stage = std::string(stage_name(stage_));
  update.step = step_;
  update.total_steps = total_steps_;
  update.percent = job_percent();
  const json eta = field(event, "eta_seconds_left");
  update.eta_s =
      eta.is_number() ? eta.get<double>() : eta_seconds(event.created_ms, update.percent);
  return progress(update);
}

std::vector<ordered_json> JobUpdates::finish(const Event& event) {
  finished_ = true;
  const double duration_s =
      first_started_ms_ ? seconds_between(*first_started_ms_, event.created_ms) : 0.0;
  const std::string status = text_field(event, "status");
  const std::vector<std::string> images = located_outputs();
  const bool success = status == "succeeded" && !images.empty();
  std::vector<ordered_json> updates = {job_finished(job_id_, success, duration_s)};
  if (success) {
    updates.push_back(job_complete(job_id_, images.front(), duration_s, images));
  } else if (status == "succeeded") {
    updates.push_back(job_error(job_id_, "the job finished without an image"));
  } else if (status == "canceled") {
    updates.push_back(job_error(job_id_, "canceled: " + error_message(event)));
  } else {
    updates.push_back(job_error(job_id_, error_message(event)));
  }
  return updates;
}

std::vector<std::string> JobUpdates::located_outputs() const {
  std::vector<std::string> located;
  for (const auto& [index, keys] : output_keys_) {
    for (const std::string& key : keys) located.push_back(locate_(key));
  }
  return located;
}

}  // namespace df::pixels

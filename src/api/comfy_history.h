// ComfyUI's views of a job: queue tuples, history entries and its execution messages.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/job.h"
#include "store/store.h"

namespace df::api {

// Jobs with this status (the first 1000; of `owner` only when given), oldest first: the order the
// queue runs them in.
std::vector<Job> jobs_with_status(store::Store& store, JobStatus status,
                                  std::optional<std::string> owner = std::nullopt);

// Prompts waiting or running: ComfyUI's queue_remaining.
int64_t queue_remaining(store::Store& store);

// The prompt number ComfyUI clients see (jobs made through /v1 have none and show 0).
nlohmann::json comfy_number(const Job& job);
// [number, prompt_id, graph, extra_data, outputs_to_execute], as /queue and /history show it.
nlohmann::json queue_tuple(const Job& job);
// "outputs" of a finished job: {node_id: {"images": [{filename, subfolder, type}]}}, from its stored
// artifacts (type output) and the previews among its events (type temp).
nlohmann::json job_outputs(const std::vector<Artifact>& artifacts, const std::vector<Event>& events);
// The history entry {prompt, outputs, status, meta} of a finished job.
nlohmann::json history_entry(const Job& job, const std::vector<Artifact>& artifacts,
                             const std::vector<Event>& events);
// The history entry of a finished job, read from the store.
nlohmann::json load_history_entry(store::Store& store, const Job& job);

}  // namespace df::api

// Which runner of this process takes a claimed job.
#include "worker/runner_choice.h"

#include <algorithm>
#include <optional>
#include <tuple>

namespace df::worker {
namespace {

using Rank = std::tuple<size_t, int, int, size_t>;

std::optional<size_t> position(const std::vector<std::string>& candidates, const std::string& id) {
  const auto it = std::find(candidates.begin(), candidates.end(), id);
  if (it == candidates.end()) return std::nullopt;
  return static_cast<size_t>(it - candidates.begin());
}

// Where the runner's group (native, or every backend together) first appears in the candidates.
size_t group_position(const std::vector<std::string>& candidates, const std::string& runner_id) {
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (is_backend_runner(candidates[i]) == is_backend_runner(runner_id)) return i;
  }
  return candidates.size();
}

Rank rank(const RunnerChoiceInput& input, const gpu::RunnerState& runner) {
  return {group_position(input.candidates, runner.runner_id), runner.queue_remaining,
          holds_warm(runner, input.checkpoints) ? 0 : 1,
          *position(input.candidates, runner.runner_id)};
}

// Can run the job at all: one of its candidates, its backend answering, not taken out.
bool capable(const RunnerChoiceInput& input, const gpu::RunnerState& runner) {
  return position(input.candidates, runner.runner_id) && !input.down.contains(runner.runner_id) &&
         runner.state != "out_of_rotation" && runner.state != "stopped";
}

std::string joined(const std::vector<std::string>& ids) {
  std::string text;
  for (const auto& id : ids) text += (text.empty() ? "" : ", ") + id;
  return text;
}

RunnerChoice wait(std::string reason) {
  return {RunnerChoice::Action::kWait, "", std::move(reason)};
}

}  // namespace

bool holds_warm(const gpu::RunnerState& runner, const std::vector<std::string>& checkpoints) {
  return std::any_of(runner.models.begin(), runner.models.end(), [&](const std::string& model) {
    return std::find(checkpoints.begin(), checkpoints.end(), model) != checkpoints.end();
  });
}

bool is_backend_runner(const std::string& runner_id) { return runner_id.rfind("backend:", 0) == 0; }

std::vector<std::string> job_runners(const Job& job) {
  const auto it = job.spec.find("runners");
  if (it == job.spec.end() || !it->is_array()) return {kNativeRunner};
  std::vector<std::string> runners;
  for (const auto& id : *it) {
    if (id.is_string()) runners.push_back(id.get<std::string>());
  }
  return runners;
}

RunnerChoice choose_runner(const RunnerChoiceInput& input) {
  if (input.candidates.empty()) {
    return {RunnerChoice::Action::kFail, "",
            "No runner can run this job: it names none (no runner offers every node type and "
            "model file its graph needs)."};
  }
  std::optional<Rank> claimer_rank;
  std::optional<Rank> best_rank;
  std::string best_peer;
  bool capable_busy = false;
  bool capable_down = false;
  for (const auto& runner : input.roster) {
    if (!position(input.candidates, runner.runner_id)) continue;
    capable_down = capable_down || input.down.contains(runner.runner_id);
    if (!capable(input, runner)) continue;
    if (runner.worker_id == input.claimer) {
      claimer_rank = rank(input, runner);
    } else if (runner.state != "idle") {
      capable_busy = true;
    } else if (const Rank r = rank(input, runner); !best_rank || r < *best_rank) {
      best_rank = r;
      best_peer = runner.worker_id;
    }
  }
  if (best_rank && (!claimer_rank || *best_rank < *claimer_rank)) {
    return {RunnerChoice::Action::kHandOver, best_peer, ""};
  }
  if (claimer_rank) return {RunnerChoice::Action::kRunHere, "", ""};
  if (capable_busy) {
    return wait("Waiting for a runner that can run this job (" + joined(input.candidates) +
                "): every one of them is busy.");
  }
  if (capable_down) {
    return wait("Waiting for a runner that can run this job (" + joined(input.candidates) +
                "): its ComfyUI server does not answer; the job runs once it is back.");
  }
  return wait("Waiting for a runner that can run this job (" + joined(input.candidates) +
              "): none runs in this service process; a worker elsewhere that has one will take it.");
}

}  // namespace df::worker

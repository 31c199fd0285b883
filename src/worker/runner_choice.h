// Which runner of this process takes a claimed job: the claimer, an idle peer, none yet, or none.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "core/job.h"
#include "gpu/runner_roster.h"

namespace df::worker {

// "native": the runner id of dreamforge-runner (a backend's is "backend:<name>").
inline constexpr const char* kNativeRunner = "native";

// Whether `runner_id` names a backend ("backend:<name>").
bool is_backend_runner(const std::string& runner_id);

// Whether `runner`'s model cache holds one of `checkpoints` warm.
bool holds_warm(const gpu::RunnerState& runner, const std::vector<std::string>& checkpoints);

// The runner ids that can run `job`, preferred first: its spec's "runners" as the API wrote them
// at intake, or {"native"} for a job without them (older jobs, /v1 generate jobs).
std::vector<std::string> job_runners(const Job& job);

struct RunnerChoiceInput {
  std::vector<std::string> candidates;   // the job's runner ids, preferred first
  std::string claimer;                   // the worker that claimed the job
  std::vector<gpu::RunnerState> roster;  // this process's runners (the claimer's among them)
  std::set<std::string> down;            // runner ids whose backend does not answer now
  std::vector<std::string> checkpoints;  // model files the job loads: a warm native runner first
};

struct RunnerChoice {
  enum class Action {
    kRunHere,   // the claimer runs it
    kHandOver,  // the idle peer `worker_id` runs it
    kWait,      // back to the queue without using an attempt: a capable runner is busy or down,
                // or none of this process can run it (another process's may)
    kFail,      // no runner anywhere can run it: the job names none
  };
  Action action = Action::kRunHere;
  std::string worker_id;  // kHandOver: the peer
  std::string reason;     // kWait, kFail: why, in plain language
};

// Among the idle runners that can run the job (the claimer included): the group the job prefers
// (native or backends, whichever its candidates name first), then the backend with the shortest
// queue of its own, then a runner with one of the job's checkpoints warm, then the job's order of
// candidates. The claimer keeps the job unless a peer ranks strictly higher.
RunnerChoice choose_runner(const RunnerChoiceInput& input);

}  // namespace df::worker

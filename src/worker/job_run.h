// Runs one claimed job in the runner: items, events, artifacts, the step record, and its outcome.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/job.h"
#include "queue/queue.h"
#include "runner/protocol_messages.h"
#include "worker/memory_hygiene.h"
#include "worker/worker_context.h"

namespace df::worker {

class JobRun {
 public:
  JobRun(queue::Delivery delivery, WorkerContext& context);
  // Drives the job to an outcome: succeeded, failed, canceled, requeued for a retry, or abandoned
  // when another worker took the lease over (then nothing more is written).
  void execute();
  // Whether the run ended because the database or the storage was unavailable (the job went back
  // to the queue without using up an attempt).
  bool ended_by_backend_outage() const { return backend_outage_; }
  // The runner's own memory report at the end of its run (reported is false when none came).
  const RunnerMemoryReport& runner_memory_at_end() const { return memory_at_end_; }

 private:
  struct Outcome {
    std::string status;  // succeeded | failed | canceled | lost
    nlohmann::json error;
  };

  void prepare_items();
  std::vector<const JobItem*> pending_items() const;
  Outcome run_in_runner(const nlohmann::json& graph);
  Outcome follow(runner::RunnerProcess& runner, const std::string& run_id);
  // Stops a runner that broke the protocol; the job fails as if it had crashed.
  Outcome protocol_break(const std::string& what);
  // The runner went silent past the silence timeout: stopped, and the run fails as runner_hung.
  Outcome hung();
  runner::RunRequest run_request(const nlohmann::json& graph, const std::string& run_id) const;
  // Records one runner event: each kind the job keeps has its own handler (hello, freed and bye
  // are the supervisor's, not a job's).
  void handle(const runner::Event& event);
  void on(const runner::RunStartedEvent& event);
  void on(const runner::ItemStartedEvent& event);
  void on(const runner::ExecutingEvent& event);
  void on(const runner::ProgressEvent& event);
  void on(const runner::StageEvent& event);
  void on(const runner::CachedEvent& event);
  void on(const runner::PreviewEvent& event);
  void on(const runner::StreamedImageEvent& event);
  void on(const runner::ArtifactEvent& event);
  void on(const runner::ItemFinishedEvent& event);
  void on(const runner::ErrorEvent& event);
  void on(const runner::RunFinishedEvent& event);
  void on(const runner::LogEvent& event);
  JobItem* find_item(int index);
  // Puts an output image into the blob store as an artifact; the file stays in the output folder
  // (for /view), written there first when the runner sent its bytes or a URL.
  void store_artifact(const runner::ArtifactEvent& event);
  // Where an artifact's image lies on this machine: its path, or the output folder file its bytes
  // (data, url) were written to. Throws Error(kProtocol) for an unsafe name or undecodable bytes,
  // Error(kUnavailable) when its URL cannot be fetched.
  std::string artifact_file(const runner::ArtifactEvent& event) const;
  void save_items();
  void emit(Event event);
  void sample_memory(pid_t pid);
  // Stops the runner for good (graceful: asks it to shut down first; else TERM, then KILL), reaps it
  // and returns how it ended; the step then waits for its memory instead of checking what it kept.
  std::string stop_runner(bool graceful = false);
  // The step's memory at its end: a stopped runner's memory waited for (AC-2), a kept runner's
  // checked against what it held before (AC-1); either way one "gpu" event says how it went.
  void account_memory(const Outcome& outcome);
  void wait_for_stopped_runner();
  void check_memory_returned();
  // AC-3: what an out-of-memory error needs to be understood and acted on.
  void add_oom_details(nlohmann::json& error) const;
  // Renews the lease in the store (and the claim in the queue) every heartbeat; false when lost.
  bool keep_lease();
  // Tells the queue how the delivery ended (after the store has the outcome).
  void settle(const queue::SettleInfo& info);
  void conclude(Outcome outcome);
  void finish(JobStatus status, const nlohmann::json& error);

  queue::Delivery delivery_;  // as the queue handed it out
  Job job_;                    // as this run updates it
  Lease lease_;
  WorkerContext& context_;
  std::vector<JobItem> items_;
  std::map<std::pair<int, std::string>, int> outputs_;  // (item, node) -> images stored so far
  std::map<int, std::chrono::steady_clock::time_point> item_started_;
  Step step_;
  std::optional<RunnerMemoryProbe> memory_probe_;
  pid_t runner_pid_ = 0;
  bool runner_stopped_ = false;
  RunnerMemoryReport memory_at_start_;  // the runner's own report in run_started
  RunnerMemoryReport memory_at_end_;    // and in run_finished
  int64_t free_memory_at_start_ = 0;
  nlohmann::json runner_error_;
  std::string finished_status_;
  bool lost_ = false;
  bool backend_outage_ = false;
  std::chrono::steady_clock::time_point last_heartbeat_;
  std::chrono::steady_clock::time_point last_cancel_check_;
};

}  // namespace df::worker

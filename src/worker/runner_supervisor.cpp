// Keeps one runner warm for a worker, as a subprocess or in a container.
#include "worker/runner_supervisor.h"

#include <chrono>

#include "core/error.h"
#include "runner/container/container_runners.h"
#include "runner/protocol.h"

namespace df::worker {

RunnerSupervisor::RunnerSupervisor(RunnerSettings settings) : settings_(std::move(settings)) {
  if (settings_.argv.empty()) throw Error(ErrorCode::kInvalidArgument, "no runner executable");
}

RunnerSupervisor::~RunnerSupervisor() { stop(); }

runner::RunnerProcess& RunnerSupervisor::ensure_started() {
  if (process_ && !process_->output_closed()) return *process_;
  if (process_) kill();
  process_ = spawn();
  greet();
  if (settings_.container) {
    container_pid_ = runner::container_main_pid(settings_.container->settings.engine,
                                                container_name_, settings_.engine_timeout_ms);
  }
  return *process_;
}

std::unique_ptr<runner::RunnerProcess> RunnerSupervisor::spawn() {
  if (!settings_.container) {
    return std::make_unique<runner::RunnerProcess>(settings_.argv, settings_.environment);
  }
  container_name_ = runner::next_runner_container_name();
  container_pid_ = 0;
  return std::make_unique<runner::RunnerProcess>(
      runner::container_run_argv(*settings_.container, container_name_, settings_.argv,
                                 settings_.environment),
      settings_.environment);
}

std::string RunnerSupervisor::remove_container(std::string ended) {
  container_pid_ = 0;
  if (!settings_.container || container_name_.empty()) return ended;
  const std::string failure = runner::remove_container(
      settings_.container->settings.engine, container_name_, settings_.engine_timeout_ms);
  if (failure.empty()) return ended;
  return ended + "; its container " + container_name_ + " could not be removed (" + failure + ")";
}

void RunnerSupervisor::greet() {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(settings_.hello_timeout_ms);
  try {
    process_->send(runner::to_json(runner::Request{runner::HelloRequest{runner::kProtocolVersion}}));
    while (std::chrono::steady_clock::now() < deadline) {
      std::optional<nlohmann::json> message = process_->next_event(200);
      if (!message) {
        if (!process_->output_closed()) continue;
        std::string ended = kill();
        throw Error(ErrorCode::kRunnerCrashed, "the runner " + ended + " before saying hello",
                    {{"runner", executable()}});
      }
      const runner::Event event = runner::parse_event(*message);
      if (const auto* refused = std::get_if<runner::ErrorEvent>(&event)) {
        std::string ended = kill();
        throw Error(ErrorCode::kRunnerCrashed,
                    "the runner " + executable() + " refused this worker's hello: " +
                        refused->message + " (it was stopped: " + ended + ")",
                    {{"runner", executable()}, {"code", refused->code}, {"details", refused->details}});
      }
      const auto* hello = std::get_if<runner::HelloEvent>(&event);
      if (!hello) continue;  // a log line or the like before the hello
      if (const std::string refusal = runner::hello_refusal(*hello); !refusal.empty()) {
        std::string ended = kill();
        throw Error(ErrorCode::kRunnerCrashed,
                    "the runner " + executable() + " (" + hello->runner + " " + hello->version +
                        ") cannot be used: " + refusal + " (it was stopped: " + ended + ")",
                    {{"runner", executable()},
                     {"runner_protocol", hello->protocol},
                     {"worker_protocol", runner::kProtocolVersion}});
      }
      hello_ = *hello;
      return;
    }
  } catch (const Error& e) {
    if (!process_) throw;  // already stopped, and the error says why
    std::string ended = kill();
    throw Error(ErrorCode::kRunnerCrashed, std::string("the runner did not speak the protocol: ") +
                                               e.what() + " (" + ended + ")",
                {{"runner", executable()}});
  }
  std::string ended = kill();
  throw Error(ErrorCode::kRunnerCrashed, "the runner did not say hello in time and was stopped (" +
                                             ended + ")");
}

pid_t RunnerSupervisor::pid() const {
  return process_ && !process_->output_closed() ? process_->pid() : 0;
}

pid_t RunnerSupervisor::memory_pid() const {
  const pid_t running = pid();
  return running != 0 && container_pid_ != 0 ? container_pid_ : running;
}

std::string RunnerSupervisor::stop() {
  if (!process_) return "not running";
  try {
    process_->send(runner::to_json(runner::Request{runner::ShutdownRequest{}}));
  } catch (const Error&) {
    // Its input is already closed: it is exiting or gone; stop() below reaps it either way.
  }
  std::string ended = runner::describe_exit_status(process_->stop(settings_.kill_grace_ms));
  process_.reset();
  return remove_container(std::move(ended));
}

void RunnerSupervisor::free_memory() {
  if (!process_ || process_->output_closed()) return;
  try {
    process_->send(runner::to_json(runner::Request{runner::FreeRequest{}}));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      auto message = process_->next_event(200);
      if (message && std::holds_alternative<runner::FreedEvent>(runner::parse_event(*message))) return;
      if (!message && process_->output_closed()) break;
    }
  } catch (const Error&) {
    // A broken pipe or a garbled answer: handled below like a runner that did not answer.
  }
  kill();
}

std::string RunnerSupervisor::kill() {
  if (!process_) return "not running";
  std::string ended = runner::describe_exit_status(process_->terminate(settings_.kill_grace_ms));
  process_.reset();
  return remove_container(std::move(ended));
}

}  // namespace df::worker

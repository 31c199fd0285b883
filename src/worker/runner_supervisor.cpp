// Keeps one runner subprocess warm for a worker.
#include "worker/runner_supervisor.h"

#include <chrono>

#include "core/error.h"

namespace df::worker {

RunnerSupervisor::RunnerSupervisor(RunnerSettings settings) : settings_(std::move(settings)) {
  if (settings_.argv.empty()) throw Error(ErrorCode::kInvalidArgument, "no runner executable");
}

RunnerSupervisor::~RunnerSupervisor() { stop(); }

runner::RunnerProcess& RunnerSupervisor::ensure_started() {
  if (process_ && !process_->output_closed()) return *process_;
  if (process_) kill();
  process_ = std::make_unique<runner::RunnerProcess>(settings_.argv, settings_.environment);
  process_->send({{"type", "hello"}, {"protocol", 1}});
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(settings_.hello_timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    std::optional<nlohmann::json> event;
    try {
      event = process_->next_event(200);
    } catch (const Error& e) {
      std::string ended = kill();
      throw Error(ErrorCode::kRunnerCrashed, std::string("the runner did not speak the protocol: ") +
                                                 e.what() + " (" + ended + ")");
    }
    if (event && event->value("type", "") == "hello") {
      const auto capabilities = event->value("capabilities", nlohmann::json::object());
      hello_device_ = capabilities.value("device", "");
      devices_ = capabilities.value("devices", std::vector<std::string>{});
      return *process_;
    }
    if (!event && process_->output_closed()) {
      std::string ended = kill();
      throw Error(ErrorCode::kRunnerCrashed, "the runner " + ended + " before saying hello",
                  {{"runner", executable()}});
    }
  }
  std::string ended = kill();
  throw Error(ErrorCode::kRunnerCrashed, "the runner did not say hello in time and was stopped (" +
                                             ended + ")");
}

pid_t RunnerSupervisor::pid() const {
  return process_ && !process_->output_closed() ? process_->pid() : 0;
}

std::string RunnerSupervisor::stop() {
  if (!process_) return "not running";
  try {
    process_->send({{"type", "shutdown"}});
  } catch (const Error&) {
    // Its input is already closed: it is exiting or gone; stop() below reaps it either way.
  }
  std::string ended = runner::describe_exit_status(process_->stop(settings_.kill_grace_ms));
  process_.reset();
  return ended;
}

void RunnerSupervisor::free_memory() {
  if (!process_ || process_->output_closed()) return;
  try {
    process_->send({{"type", "free"}});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      auto event = process_->next_event(200);
      if (event && event->value("type", "") == "freed") return;
      if (!event && process_->output_closed()) break;
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
  return ended;
}

}  // namespace df::worker

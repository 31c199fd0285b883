// Starts a runner subprocess and exchanges protocol lines with it over pipes.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include <nlohmann/json.hpp>

namespace df::runner {

class RunnerProcess {
 public:
  // Starts `argv[0]` with `argv`; its stdin/stdout are pipes to us, stderr is inherited. Its
  // environment is ours without secrets, with `environment` ("NAME=value") set over it.
  explicit RunnerProcess(const std::vector<std::string>& argv,
                         const std::vector<std::string>& environment = {});
  ~RunnerProcess();
  RunnerProcess(const RunnerProcess&) = delete;
  RunnerProcess& operator=(const RunnerProcess&) = delete;

  void send(const nlohmann::json& request);
  // The next event; nullopt when the runner closed stdout or `timeout_ms` (>= 0) passed.
  // A line that is not a JSON object throws Error(kProtocol) quoting the line.
  std::optional<nlohmann::json> next_event(int timeout_ms = -1);
  // Closes the runner's stdin (its end-of-input is a shutdown).
  void close_input();
  // Waits for exit (TERM after `grace_ms`, KILL after another `grace_ms`); returns the wait status.
  int stop(int grace_ms);
  // TERM now, KILL after `grace_ms`; waits until the process is reaped and returns the wait status.
  int terminate(int grace_ms);
  pid_t pid() const { return pid_; }
  // True once the runner closed its stdout (it exited or crashed).
  bool output_closed() const { return from_child_ < 0 && buffer_.find('\n') == std::string::npos; }

 private:
  bool wait_for_exit(int timeout_ms);

  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  std::string buffer_;
  size_t scanned_ = 0;  // buffer_ holds no newline before this (an image event is megabytes long)
  bool exited_ = false;
  int status_ = 0;
};

// This process's environment without the secrets, with `overrides` ("NAME=value") set over it:
// what a child process Dream Forge starts (a runner, a backend server) gets.
std::vector<std::string> runner_environment(const std::vector<std::string>& overrides);

// In a forked child before exec: every descriptor above stderr is closed, whether or not its owner
// (a library, a socket another thread just accepted) set close-on-exec.
void close_inherited_descriptors();

// Describes a wait status in words ("exited with status 1", "killed by signal 9 (Killed)").
std::string describe_exit_status(int status);

}  // namespace df::runner

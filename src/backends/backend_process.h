// A ComfyUI server Dream Forge starts itself: its command as a child process in its own process
// group, logging to <data>/logs/backends/<name>.log, ready once GET /object_info answers 200.
#pragma once

#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <sys/types.h>

#include "backends/backend_config.h"
#include "core/error.h"

namespace df::backends {

// spec.command with "{port}" in each word replaced by spec.port.
std::vector<std::string> backend_argv(const BackendSpec& spec);

// <data_dir>/logs/backends/<name>.log
std::filesystem::path backend_log_path(const std::string& data_dir, const std::string& name);

// The last `count` lines of the file at `path` ("" when it cannot be read).
std::string last_lines(const std::filesystem::path& path, int count);

// One started backend server. Thread-safe: every member takes the same lock.
class BackendProcess {
 public:
  // `spec` must have a command (started_by_us()); else Error(kInvalidArgument).
  BackendProcess(BackendSpec spec, const std::string& data_dir, int kill_grace_ms = 5000);
  ~BackendProcess();  // stops a running server
  BackendProcess(const BackendProcess&) = delete;
  BackendProcess& operator=(const BackendProcess&) = delete;

  // Starts the server when none runs (a crashed one is reaped and started again) and waits until
  // GET <base_url>/object_info answers 200. A server that exits first, or does not answer within
  // spec.start_timeout_ms, is killed and Error(kUnavailable) is thrown with its log's last lines.
  // `while_waiting` is called between readiness checks (about every 100 ms).
  void ensure_started(const std::function<void()>& while_waiting = nullptr);
  // True while the started server runs; false before the first start, after a stop, and once it
  // has exited (it is reaped then, and exit_description() says how it ended).
  bool running();
  // How the last server ended ("exited with status 1", "killed by signal 9 (Killed)"); "" while one
  // runs or before any has ended.
  std::string exit_description();
  // TERM to its process group, KILL after the grace period, reaped; returns how it ended ("" when
  // none ran).
  std::string stop();
  // The running server's process id (its process group's too); 0 when none runs.
  pid_t pid();

  const BackendSpec& spec() const { return spec_; }
  const std::filesystem::path& log_path() const { return log_path_; }

 private:
  void spawn();
  bool answers_object_info() const;
  bool reap(int options);  // true once the child is reaped
  std::string kill_group();
  Error start_failure(const std::string& what);

  const BackendSpec spec_;
  const std::filesystem::path log_path_;
  const int kill_grace_ms_;
  std::mutex mutex_;
  pid_t pid_ = 0;
  std::string exit_description_;
};

}  // namespace df::backends

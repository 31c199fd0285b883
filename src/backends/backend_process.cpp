// A ComfyUI server Dream Forge starts itself: spawn, readiness, crash detection, staged stop.
#include "backends/backend_process.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <fstream>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "http/client.h"
#include "runner/runner_process.h"

namespace df::backends {
namespace {

constexpr int kLogLinesInErrors = 20;
constexpr auto kReadyPoll = std::chrono::milliseconds(100);

}  // namespace

std::vector<std::string> backend_argv(const BackendSpec& spec) {
  const std::string port = std::to_string(spec.port);
  std::vector<std::string> argv;
  for (std::string word : spec.command) {
    for (size_t at = word.find("{port}"); at != std::string::npos; at = word.find("{port}", at)) {
      word.replace(at, 6, port);
      at += port.size();
    }
    argv.push_back(std::move(word));
  }
  return argv;
}

std::filesystem::path backend_log_path(const std::string& data_dir, const std::string& name) {
  return std::filesystem::path(data_dir) / "logs" / "backends" / (name + ".log");
}

std::string last_lines(const std::filesystem::path& path, int count) {
  std::ifstream in(path);
  std::deque<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(std::move(line));
    if (static_cast<int>(lines.size()) > count) lines.pop_front();
  }
  std::string out;
  for (const auto& line : lines) out += line + "\n";
  return out;
}

BackendProcess::BackendProcess(BackendSpec spec, const std::string& data_dir, int kill_grace_ms)
    : spec_(std::move(spec)),
      log_path_(backend_log_path(data_dir, spec_.name)),
      kill_grace_ms_(kill_grace_ms) {
  if (!spec_.started_by_us()) {
    throw Error(ErrorCode::kInvalidArgument,
                "backend '" + spec_.name + "' has no command: Dream Forge does not start it");
  }
}

BackendProcess::~BackendProcess() { stop(); }

void BackendProcess::ensure_started(const std::function<void()>& while_waiting) {
  std::lock_guard lock(mutex_);
  if (pid_ > 0 && !reap(WNOHANG)) return;
  spawn();
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(spec_.start_timeout_ms);
  while (!answers_object_info()) {
    if (reap(WNOHANG)) throw start_failure(exit_description_ + " before it answered");
    if (std::chrono::steady_clock::now() >= deadline) {
      kill_group();
      throw start_failure("did not answer within " + std::to_string(spec_.start_timeout_ms) +
                          " ms and was stopped");
    }
    if (while_waiting) while_waiting();
    std::this_thread::sleep_for(kReadyPoll);
  }
}

bool BackendProcess::running() {
  std::lock_guard lock(mutex_);
  return pid_ > 0 && !reap(WNOHANG);
}

std::string BackendProcess::exit_description() {
  std::lock_guard lock(mutex_);
  if (pid_ > 0) reap(WNOHANG);
  return exit_description_;
}

std::string BackendProcess::stop() {
  std::lock_guard lock(mutex_);
  if (pid_ <= 0) return "";
  return kill_group();
}

pid_t BackendProcess::pid() {
  std::lock_guard lock(mutex_);
  if (pid_ > 0) reap(WNOHANG);
  return pid_;
}

void BackendProcess::spawn() {
  std::filesystem::create_directories(log_path_.parent_path());
  const int log = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) {
    throw Error(ErrorCode::kIo, "cannot open " + log_path_.string() + ": " + std::strerror(errno));
  }
  const std::vector<std::string> argv = backend_argv(spec_);
  const std::vector<std::string> environment = runner::runner_environment({});
  std::vector<char*> args, env;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : environment) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log);
    throw Error(ErrorCode::kIo, std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    const int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, STDIN_FILENO);
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    runner::close_inherited_descriptors();
    ::execvpe(args[0], args.data(), env.data());
    const std::string message = std::string("dreamforge: cannot execute ") + args[0] + ": " +
                                std::strerror(errno) + "\n";
    [[maybe_unused]] auto ignored = ::write(STDERR_FILENO, message.data(), message.size());
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here: the group exists before any signal is sent to it
  ::close(log);
  pid_ = pid;
  exit_description_.clear();
}

bool BackendProcess::answers_object_info() const {
  try {
    return http::Client(spec_.base_url(), 2000).get("/object_info").status == 200;
  } catch (const Error&) {
    return false;
  }
}

bool BackendProcess::reap(int options) {
  int status = 0;
  const pid_t done = ::waitpid(pid_, &status, options);
  if (done != pid_) return false;
  exit_description_ = runner::describe_exit_status(status);
  ::kill(-pid_, SIGKILL);  // its own children that outlived it would hold its port
  pid_ = 0;
  return true;
}

std::string BackendProcess::kill_group() {
  const pid_t group = pid_;
  ::kill(-group, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kill_grace_ms_);
  bool reaped = reap(WNOHANG);
  while (!reaped && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    reaped = reap(WNOHANG);
  }
  if (!reaped) {
    ::kill(-group, SIGKILL);
    reap(0);
  }
  return exit_description_;
}

Error BackendProcess::start_failure(const std::string& what) {
  return Error(ErrorCode::kUnavailable,
               "the backend '" + spec_.name + "' (" + spec_.base_url() + ") " + what +
                   "; the last lines of " + log_path_.string() + ":\n" +
                   last_lines(log_path_, kLogLinesInErrors),
               {{"backend", spec_.name}, {"log", log_path_.string()}});
}

}  // namespace df::backends

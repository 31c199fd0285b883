// RunnerProcess: fork/exec with pipes, line-buffered event reading with timeouts, staged stop.
#include "runner/runner_process.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <string_view>
#include <thread>
#include <unistd.h>

#include "core/error.h"
#include "runner/protocol.h"

namespace df::runner {
namespace {

void write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      throw Error(ErrorCode::kRunnerCrashed,
                  std::string("cannot write to the runner: ") + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
}

// Variables a runner never needs and must not see: credentials of the model sources, the URL
// signing key, and the backends' URLs and keys (which may carry passwords).
bool is_secret_variable(std::string_view entry) {
  static constexpr std::string_view kSecretNames[] = {
      "HF_TOKEN", "CIVITAI_TOKEN", "DREAMFORGE_SECRET", "DREAMFORGE_DATABASE_URL",
      "DREAMFORGE_QUEUE_URL", "DREAMFORGE_STORAGE_URL", "AWS_ACCESS_KEY_ID",
      "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "PGPASSWORD"};
  static constexpr std::string_view kSecretPrefixes[] = {"DREAMFORGE_S3_"};
  const std::string_view name = entry.substr(0, entry.find('='));
  for (std::string_view secret : kSecretNames) {
    if (name == secret) return true;
  }
  for (std::string_view prefix : kSecretPrefixes) {
    if (name.starts_with(prefix)) return true;
  }
  return false;
}

std::string_view variable_name(std::string_view entry) { return entry.substr(0, entry.find('=')); }

}  // namespace

std::vector<std::string> runner_environment(const std::vector<std::string>& overrides) {
  std::vector<std::string> out;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const bool overridden = std::any_of(overrides.begin(), overrides.end(), [&](const std::string& o) {
      return variable_name(o) == variable_name(*entry);
    });
    if (!overridden && !is_secret_variable(*entry)) out.emplace_back(*entry);
  }
  out.insert(out.end(), overrides.begin(), overrides.end());
  return out;
}

void close_inherited_descriptors() {
  if (::close_range(3, ~0U, 0) == 0) return;
  const long limit = ::sysconf(_SC_OPEN_MAX);
  for (int fd = 3; fd < (limit > 0 ? limit : 1024); ++fd) ::close(fd);
}

RunnerProcess::RunnerProcess(const std::vector<std::string>& argv,
                             const std::vector<std::string>& environment_overrides) {
  if (argv.empty()) throw Error(ErrorCode::kInvalidArgument, "no runner executable given");
  int in_pipe[2], out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0) {
    throw Error(ErrorCode::kIo, std::string("pipe: ") + std::strerror(errno));
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const std::vector<std::string> environment = runner_environment(environment_overrides);
  std::vector<char*> env;
  for (const auto& e : environment) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) throw Error(ErrorCode::kIo, std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    // A runner never outlives the process (thread) that started it, even one killed with -9.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(in_pipe[0], STDIN_FILENO);
    ::dup2(out_pipe[1], STDOUT_FILENO);
    close_inherited_descriptors();
    ::execve(args[0], args.data(), env.data());
    const char msg[] = "dreamforge: cannot execute the runner\n";
    [[maybe_unused]] auto ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  to_child_ = in_pipe[1];
  from_child_ = out_pipe[0];
  ::signal(SIGPIPE, SIG_IGN);  // a dead runner must surface as an error, not kill us
}

RunnerProcess::~RunnerProcess() {
  if (!exited_ && pid_ > 0) stop(2000);
  if (to_child_ >= 0) ::close(to_child_);
  if (from_child_ >= 0) ::close(from_child_);
}

void RunnerProcess::send(const nlohmann::json& request) {
  if (to_child_ < 0) throw Error(ErrorCode::kRunnerCrashed, "the runner's input is closed");
  write_all(to_child_, encode_event(request));
}

std::optional<nlohmann::json> RunnerProcess::next_event(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    auto newline = buffer_.find('\n', scanned_);
    if (newline == std::string::npos) scanned_ = buffer_.size();  // a long line: read on from here
    if (newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      scanned_ = 0;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      nlohmann::json event = nlohmann::json::parse(line, nullptr, false);
      if (event.is_discarded() || !event.is_object() || !event.contains("type")) {
        throw Error(ErrorCode::kProtocol, "runner wrote a line that is not an event: " +
                                              line.substr(0, 200));
      }
      return event;
    }
    if (from_child_ < 0) return std::nullopt;
    int wait_ms = -1;
    if (timeout_ms >= 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      wait_ms = static_cast<int>(left.count());
    }
    pollfd pfd{from_child_, POLLIN, 0};
    int ready = ::poll(&pfd, 1, wait_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) return std::nullopt;
    char chunk[65536];
    ssize_t n = ::read(from_child_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(from_child_);
      from_child_ = -1;
      continue;  // deliver what is buffered, then report the end
    }
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

void RunnerProcess::close_input() {
  if (to_child_ >= 0) ::close(to_child_);
  to_child_ = -1;
}

bool RunnerProcess::wait_for_exit(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  do {
    if (::waitpid(pid_, &status_, WNOHANG) == pid_) {
      exited_ = true;
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

int RunnerProcess::stop(int grace_ms) {
  if (exited_) return status_;
  close_input();
  return wait_for_exit(grace_ms) ? status_ : terminate(grace_ms);
}

int RunnerProcess::terminate(int grace_ms) {
  if (exited_) return status_;
  close_input();
  ::kill(pid_, SIGTERM);
  if (!wait_for_exit(grace_ms)) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
    exited_ = true;
  }
  return status_;
}

std::string describe_exit_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  }
  return "ended with wait status " + std::to_string(status);
}

}  // namespace df::runner

// run_engine_client: fork/exec with both output streams read through poll until exit or the bound.
#include "runner/container/engine_client.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"
#include "runner/runner_process.h"

namespace df::runner {
namespace {

using Clock = std::chrono::steady_clock;

// Reads both pipes until they close or `deadline` passes (false then); closes them either way.
bool read_until_closed(int out_fd, int err_fd, std::string& out, std::string& err,
                       Clock::time_point deadline) {
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  std::string* sinks[2] = {&out, &err};
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      for (const pollfd& open : fds) {
        if (open.fd >= 0) ::close(open.fd);
      }
      return false;
    }
    const int ready = ::poll(fds, 2, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char chunk[4096];
      const ssize_t n = ::read(fds[i].fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
      } else {
        sinks[i]->append(chunk, static_cast<size_t>(n));
      }
    }
  }
  return true;
}

}  // namespace

bool EngineResult::succeeded() const {
  return finished && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string EngineResult::describe() const {
  if (!finished) return "did not finish in time and was killed";
  std::string text = describe_exit_status(status);
  std::string message = err.substr(0, err.find_last_not_of(" \n") + 1);
  return message.empty() ? text : text + ": " + message.substr(0, 500);
}

EngineResult run_engine_client(const std::vector<std::string>& argv, int timeout_ms) {
  if (argv.empty()) throw Error(ErrorCode::kInvalidArgument, "no engine client command given");
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    throw Error(ErrorCode::kIo, std::string("pipe: ") + std::strerror(errno));
  }
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    throw Error(ErrorCode::kIo, std::string("pipe: ") + std::strerror(errno));
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const std::vector<std::string> environment = runner_environment({});
  std::vector<char*> env;
  for (const auto& e : environment) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(ErrorCode::kIo, std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    close_inherited_descriptors();
    ::execvpe(args[0], args.data(), env.data());
    const char msg[] = "cannot execute the container engine client\n";
    [[maybe_unused]] auto ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  EngineResult result;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  result.finished = read_until_closed(out_pipe[0], err_pipe[0], result.out, result.err, deadline);
  if (!result.finished) ::kill(pid, SIGKILL);
  while (::waitpid(pid, &result.status, 0) < 0 && errno == EINTR) {
  }
  return result;
}

}  // namespace df::runner

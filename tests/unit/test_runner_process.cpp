// Unit tests for RunnerProcess: pipes to a child, event reading with timeouts, staged stop.
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <string>
#include <sys/wait.h>
#include <vector>

#include "core/error.h"
#include "runner/runner_process.h"
#include "test_graph_support.h"

namespace df::runner {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// A shell script standing in for the runner.
std::vector<std::string> script(const std::string& body) { return {"/bin/sh", "-c", body}; }

// How long a test waits for output or an exit that should come at once: generous for a loaded
// machine, since these waits end as soon as what they wait for happens.
constexpr int kPatienceMs = 30000;
// An upper bound for what must take about a second at most; it only tells "returned in time" from
// "hung" (the stand-in runners sleep 30 s), so it leaves a loaded machine plenty of room.
constexpr long kHungMs = 20000;

long elapsed_ms(Clock::time_point since) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count());
}

TEST(RunnerProcess, EchoesRequestsAsEventsInOrder) {
  RunnerProcess cat({"/bin/cat"});
  EXPECT_GT(cat.pid(), 0);
  const json first = {{"type", "progress"}, {"step", 1}, {"text", "multi\nline"}};
  const json second = {{"type", "done"}, {"id", "r1"}};
  cat.send(first);
  cat.send(second);
  EXPECT_EQ(cat.next_event(kPatienceMs), first);
  EXPECT_EQ(cat.next_event(kPatienceMs), second);
  EXPECT_FALSE(cat.output_closed());
}

TEST(RunnerProcess, TimeoutReturnsNothing) {
  RunnerProcess cat({"/bin/cat"});
  const auto start = Clock::now();
  EXPECT_FALSE(cat.next_event(50).has_value());
  EXPECT_GE(elapsed_ms(start), 45);
  EXPECT_LT(elapsed_ms(start), kHungMs);
  EXPECT_FALSE(cat.output_closed());
  EXPECT_FALSE(cat.next_event(0).has_value());
  cat.send({{"type", "late"}});
  EXPECT_EQ(cat.next_event(kPatienceMs), json({{"type", "late"}}));
}

TEST(RunnerProcess, ClosingInputEndsTheRunnerAndItsOutput) {
  RunnerProcess cat({"/bin/cat"});
  cat.send({{"type", "last"}});
  cat.close_input();
  EXPECT_EQ(cat.next_event(kPatienceMs), json({{"type", "last"}}));
  EXPECT_FALSE(cat.next_event(kPatienceMs).has_value());
  EXPECT_TRUE(cat.output_closed());
  const int status = cat.stop(kPatienceMs);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(describe_exit_status(status), "exited with status 0");
  graph_test::expect_error([&] { cat.send({{"type", "run"}}); }, ErrorCode::kRunnerCrashed);
}

TEST(RunnerProcess, LinesThatAreNotEventsAreProtocolErrors) {
  RunnerProcess runner(script(
      "echo 'Loading weights...'; echo '[1,2]'; echo '{\"id\":\"r1\"}'; echo; "
      "echo '{\"type\":\"ready\"}'"));
  const Error e =
      graph_test::expect_error([&] { runner.next_event(kPatienceMs); }, ErrorCode::kProtocol);
  EXPECT_NE(std::string(e.what()).find("Loading weights..."), std::string::npos) << e.what();
  graph_test::expect_error([&] { runner.next_event(kPatienceMs); }, ErrorCode::kProtocol);
  graph_test::expect_error([&] { runner.next_event(kPatienceMs); }, ErrorCode::kProtocol);
  // The empty line is skipped; the stream goes on after the bad lines.
  EXPECT_EQ(runner.next_event(kPatienceMs), json({{"type", "ready"}}));
}

TEST(RunnerProcess, OutputClosedAfterTheChildExits) {
  RunnerProcess runner(script("echo '{\"type\":\"bye\"}'; exit 3"));
  EXPECT_EQ(runner.next_event(kPatienceMs), json({{"type", "bye"}}));
  EXPECT_FALSE(runner.next_event(kPatienceMs).has_value());
  EXPECT_TRUE(runner.output_closed());
  EXPECT_EQ(describe_exit_status(runner.stop(kPatienceMs)), "exited with status 3");
}

TEST(RunnerProcess, WritingToAnExitedRunnerIsACrash) {
  RunnerProcess runner(script("exit 0"));
  EXPECT_FALSE(runner.next_event(kPatienceMs).has_value());
  // Its stdout may close before its stdin does; wait until it has fully exited (not reaped).
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(runner.pid()), &info, WEXITED | WNOWAIT), 0);
  graph_test::expect_error([&] { runner.send({{"type", "run"}}); }, ErrorCode::kRunnerCrashed);
}

TEST(RunnerProcess, MissingExecutableExitsWith127) {
  RunnerProcess runner({"/nonexistent/dreamforge-runner"});
  EXPECT_FALSE(runner.next_event(kPatienceMs).has_value());
  EXPECT_EQ(describe_exit_status(runner.stop(kPatienceMs)), "exited with status 127");
}

TEST(RunnerProcess, EmptyCommandIsRejected) {
  graph_test::expect_error([] { RunnerProcess runner({}); }, ErrorCode::kInvalidArgument);
}

TEST(RunnerProcess, StopTerminatesARunnerThatIgnoresItsInput) {
  RunnerProcess runner(script("echo '{\"type\":\"ready\"}'; exec sleep 30"));
  ASSERT_EQ(runner.next_event(kPatienceMs), json({{"type", "ready"}}));
  const auto start = Clock::now();
  // The grace is waited out once (the runner ignores its closed input), then it is what TERM gets
  // to end the runner before KILL: a second, so that a loaded machine does not escalate to KILL.
  const int status = runner.stop(1000);
  EXPECT_LT(elapsed_ms(start), kHungMs);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  EXPECT_EQ(runner.stop(100), status);
}

TEST(RunnerProcess, StopKillsARunnerThatIgnoresTerm) {
  RunnerProcess runner(script("trap '' TERM; echo '{\"type\":\"ready\"}'; exec sleep 30"));
  ASSERT_EQ(runner.next_event(kPatienceMs), json({{"type", "ready"}}));
  const auto start = Clock::now();
  const int status = runner.stop(100);
  EXPECT_GE(elapsed_ms(start), 190);
  EXPECT_LT(elapsed_ms(start), kHungMs);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_EQ(describe_exit_status(status).rfind("killed by signal 9", 0), 0u)
      << describe_exit_status(status);
}

TEST(RunnerProcess, DestructorReapsTheChild) {
  pid_t pid = -1;
  {
    RunnerProcess cat({"/bin/cat"});
    pid = cat.pid();
  }
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST(DescribeExitStatus, ExitCodesAndSignals) {
  EXPECT_EQ(describe_exit_status(0), "exited with status 0");
  EXPECT_EQ(describe_exit_status(1 << 8), "exited with status 1");
  EXPECT_EQ(describe_exit_status(SIGKILL), "killed by signal 9 (Killed)");
  EXPECT_EQ(describe_exit_status(SIGSEGV).rfind("killed by signal 11 (", 0), 0u);
}

}  // namespace
}  // namespace df::runner

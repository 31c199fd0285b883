// Unit tests for container-mode runners with a stand-in engine client (a shell script that records
// its commands and plays the runner for `run`): start, hello, memory pid, stop and kill removing
// the container, leftovers of a crashed worker, and the engine client's bound.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "runner/container/container_runners.h"
#include "runner/container/engine_client.h"
#include "scripted_runner.h"
#include "test_support.h"
#include "worker/runner_supervisor.h"

namespace df::worker {
namespace {

namespace fs = std::filesystem;
using test::read_text;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

class RunnerContainerLifecycle : public ::testing::Test {
 protected:
  RunnerContainerLifecycle() : dir_("df_container_lifecycle_") {
    runner_ = test::write_scripted_runner(dir_.path(), "native");
    write_engine("exit 0");
  }

  // The stand-in engine: appends its arguments to calls.log (and the auth variable it was given
  // to env.log), runs the scripted runner for `run`, names host pid 4242 for `inspect`, and does
  // `remove` for `rm`.
  void write_engine(const std::string& remove) {
    engine_ = (dir_.path() / "engine").string();
    const std::string d = dir_.path().string();
    std::ofstream(engine_) << "#!/bin/sh\n"
                              "printf '%s\\n' \"$*\" >> '" + d + "/calls.log'\n"
                              "case \"$1\" in\n"
                              "run) printf '%s\\n' \"$DREAMFORGE_COMFY_AUTH_HEADER\" > '" + d +
                                  "/env.log'; exec '" + runner_ + "' ;;\n"
                              "inspect) echo 4242 ;;\n"
                              "rm) " + remove + " ;;\n"
                              "ps) cat '" + d + "/containers' ;;\n"
                              "esac\n";
    ::chmod(engine_.c_str(), 0755);
  }

  RunnerSettings container_settings() const {
    RunnerSettings settings;
    settings.argv = {"/usr/bin/dreamforge-runner", "--device", "cpu"};
    settings.environment = {"DREAMFORGE_COMFY_AUTH_HEADER=Authorization: Bearer s3cret"};
    settings.kill_grace_ms = 1000;
    runner::ContainerLaunch launch;
    launch.settings.engine = engine_;
    launch.settings.image = "dreamforge-runner-cpu";
    launch.data_dir = dir_.path().string();
    launch.user = "1000:1000";
    launch.writable_mounts = {dir_.path().string()};
    settings.container = launch;
    return settings;
  }

  std::vector<std::string> calls() const { return lines_of(read_text(dir_.path() / "calls.log")); }

  test::TestDir dir_;
  std::string runner_;
  std::string engine_;
};

TEST_F(RunnerContainerLifecycle, StartsTheRunnerThroughTheEngineAndReadsItsHostPid) {
  RunnerSupervisor supervisor(container_settings());
  supervisor.ensure_started();
  EXPECT_EQ(supervisor.capabilities().kind, "native");
  EXPECT_EQ(supervisor.executable(), "dreamforge-runner-cpu");  // what steps name as their runner
  const std::string name = supervisor.container_name();
  EXPECT_TRUE(name.starts_with("dreamforge-runner-" + std::to_string(::getpid()) + "-")) << name;
  const auto logged = calls();
  ASSERT_EQ(logged.size(), 2u);
  EXPECT_TRUE(logged[0].starts_with("run -i --rm --name " + name + " ")) << logged[0];
  EXPECT_TRUE(logged[0].ends_with(" dreamforge-runner-cpu --device cpu")) << logged[0];
  EXPECT_EQ(logged[1], "inspect --format {{.State.Pid}} " + name);
  // The memory is the container's main process's; "is a runner running" is still the client.
  EXPECT_EQ(supervisor.memory_pid(), 4242);
  EXPECT_NE(supervisor.pid(), 0);
  EXPECT_NE(supervisor.pid(), 4242);
}

TEST_F(RunnerContainerLifecycle, SecretsReachTheClientsEnvironmentButNotItsArguments) {
  RunnerSupervisor supervisor(container_settings());
  supervisor.ensure_started();
  EXPECT_EQ(read_text(dir_.path() / "env.log"), "Authorization: Bearer s3cret\n");
  EXPECT_EQ(read_text(dir_.path() / "calls.log").find("s3cret"), std::string::npos);
  EXPECT_NE(calls()[0].find("-e DREAMFORGE_COMFY_AUTH_HEADER "), std::string::npos) << calls()[0];
}

TEST_F(RunnerContainerLifecycle, StopRemovesTheContainerAfterTheClientEnded) {
  RunnerSupervisor supervisor(container_settings());
  supervisor.ensure_started();
  const std::string name = supervisor.container_name();
  EXPECT_EQ(supervisor.stop(), "exited with status 0");
  EXPECT_EQ(calls().back(), "rm -f " + name);
  EXPECT_EQ(supervisor.pid(), 0);
  EXPECT_EQ(supervisor.memory_pid(), 0);
}

TEST_F(RunnerContainerLifecycle, KillRemovesTheContainerAndTheNextStartHasANewName) {
  RunnerSupervisor supervisor(container_settings());
  supervisor.ensure_started();
  const std::string first = supervisor.container_name();
  supervisor.kill();
  EXPECT_EQ(calls().back(), "rm -f " + first);
  supervisor.ensure_started();
  EXPECT_NE(supervisor.container_name(), first);
  EXPECT_TRUE(calls()[calls().size() - 2].starts_with("run -i --rm --name " +
                                                       supervisor.container_name()));
}

TEST_F(RunnerContainerLifecycle, AContainerThatCannotBeRemovedIsSaidInHowTheRunnerEnded) {
  write_engine("echo 'Error: permission denied' >&2; exit 1");
  RunnerSupervisor supervisor(container_settings());
  supervisor.ensure_started();
  const std::string ended = supervisor.kill();
  EXPECT_NE(ended.find("its container " + supervisor.container_name() + " could not be removed"),
            std::string::npos)
      << ended;
  EXPECT_NE(ended.find("permission denied"), std::string::npos) << ended;
}

TEST_F(RunnerContainerLifecycle, AGoneOrGoingContainerCountsAsRemoved) {
  for (const std::string said : {"Error: No such container: x",
                                 "Error response from daemon: removal of container x is already "
                                 "in progress"}) {
    write_engine("echo '" + said + "' >&2; exit 1");
    RunnerSupervisor supervisor(container_settings());
    supervisor.ensure_started();
    EXPECT_EQ(supervisor.stop(), "exited with status 0") << said;
  }
}

TEST_F(RunnerContainerLifecycle, WithoutTheHostPidTheMemoryIsTheClients) {
  RunnerSettings settings = container_settings();
  const std::string failing = (dir_.path() / "engine-no-inspect").string();
  std::ofstream(failing) << "#!/bin/sh\n[ \"$1\" = inspect ] && exit 1\nexec '" + engine_ +
                                "' \"$@\"\n";
  ::chmod(failing.c_str(), 0755);
  settings.container->settings.engine = failing;
  RunnerSupervisor supervisor(settings);
  supervisor.ensure_started();
  EXPECT_EQ(supervisor.memory_pid(), supervisor.pid());
}

TEST_F(RunnerContainerLifecycle, ASubprocessRunnerHasNoContainer) {
  RunnerSupervisor supervisor(RunnerSettings{{runner_}});
  supervisor.ensure_started();
  EXPECT_EQ(supervisor.container_name(), "");
  EXPECT_EQ(supervisor.memory_pid(), supervisor.pid());
  supervisor.stop();
  EXPECT_FALSE(fs::exists(dir_.path() / "calls.log"));
}

TEST_F(RunnerContainerLifecycle, LeftoversAreThoseOfGoneWorkersOrAFormerProcessWithOurId) {
  const auto alive = [](long pid) { return pid == 200; };
  const std::vector<std::string> names = {"dreamforge-runner-100-1", "dreamforge-runner-200-1",
                                          "dreamforge-runner-300-4", "other-container"};
  EXPECT_EQ(runner::leftover_runner_containers(names, 300, alive),
            (std::vector<std::string>{"dreamforge-runner-100-1", "dreamforge-runner-300-4"}));
}

TEST_F(RunnerContainerLifecycle, RemovesTheLeftoversTheEngineLists) {
  const std::string mine = runner::runner_container_name(::getpid(), 9);
  const std::string alive = runner::runner_container_name(::getppid(), 1);
  std::ofstream(dir_.path() / "containers") << "dreamforge-runner-999999999-1\n" << mine << "\n"
                                            << alive << "\n";
  const auto removed =
      runner::remove_leftover_runner_containers(engine_, dir_.path().string(), 10000);
  EXPECT_EQ(removed, (std::vector<std::string>{"dreamforge-runner-999999999-1", mine}));
  const auto logged = calls();
  ASSERT_EQ(logged.size(), 3u);
  EXPECT_NE(logged[0].find("ps -a --filter label=dreamforge.runner=1 --filter "
                           "label=dreamforge.data-dir=" + dir_.path().string()),
            std::string::npos)
      << logged[0];
  EXPECT_EQ(logged[1], "rm -f dreamforge-runner-999999999-1");
  EXPECT_EQ(logged[2], "rm -f " + mine);
}

TEST_F(RunnerContainerLifecycle, AnEngineThatCannotListIsUnavailable) {
  EXPECT_EQ(test::error_code_of([&] {
              runner::remove_leftover_runner_containers(
                  (dir_.path() / "no-such-engine").string(), dir_.path().string(), 10000);
            }),
            ErrorCode::kUnavailable);
}

TEST(RunnerContainerLaunch, RunsAsThisUserWithAbsoluteFoldersAndTheEngineFoundInPath) {
  runner::ContainerSettings settings;
  settings.engine = "sh";  // any client in PATH
  settings.image = "dreamforge-runner-cpu";
  const auto launch =
      runner::container_launch(settings, "data", {"models"}, {"data/output", "/srv/./temp"}, "cpu");
  EXPECT_TRUE(fs::path(launch.settings.engine).is_absolute()) << launch.settings.engine;
  EXPECT_EQ(fs::path(launch.settings.engine).filename(), "sh");
  EXPECT_EQ(launch.user, std::to_string(::getuid()) + ":" + std::to_string(::getgid()));
  EXPECT_EQ(launch.data_dir, (fs::current_path() / "data").string());
  EXPECT_EQ(launch.read_only_mounts,
            (std::vector<std::string>{(fs::current_path() / "models").string()}));
  EXPECT_EQ(launch.writable_mounts,
            (std::vector<std::string>{(fs::current_path() / "data/output").string(), "/srv/temp"}));
  EXPECT_FALSE(launch.host.empty());
  settings.engine = "dreamforge-no-such-engine";
  EXPECT_EQ(test::error_code_of([&] { runner::container_launch(settings, "d", {}, {}, ""); }),
            ErrorCode::kUnavailable);
}

TEST(RunnerEngineClient, CapturesBothStreamsAndTheExitStatus) {
  const runner::EngineResult result =
      runner::run_engine_client({"sh", "-c", "echo out; echo trouble >&2; exit 3"}, 10000);
  EXPECT_TRUE(result.finished);
  EXPECT_FALSE(result.succeeded());
  EXPECT_EQ(result.out, "out\n");
  EXPECT_EQ(result.describe(), "exited with status 3: trouble");
}

TEST(RunnerEngineClient, AClientPastItsBoundIsKilled) {
  const runner::EngineResult result = runner::run_engine_client({"sleep", "30"}, 100);
  EXPECT_FALSE(result.finished);
  EXPECT_FALSE(result.succeeded());
  EXPECT_EQ(result.describe(), "did not finish in time and was killed");
}

}  // namespace
}  // namespace df::worker

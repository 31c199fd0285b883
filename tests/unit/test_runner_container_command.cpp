// Unit tests for the engine client's command lines: every flag of `run`, GPU modes, podman,
// mounts at their own paths (spaces included), environment names without values, and names.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "runner/container/container_command.h"
#include "test_support.h"

namespace df::runner {
namespace {

using Words = std::vector<std::string>;

const Words kRunnerArgv = {"/opt/df/bin/dreamforge-runner", "--models-dir",
                           "/srv/df models/checkpoints", "--device", "cpu"};

ContainerLaunch cpu_launch() {
  ContainerLaunch launch;
  launch.settings.image = "dreamforge-runner-cpu:latest";
  launch.data_dir = "/srv/df data";
  launch.host = "node-1";
  launch.user = "1000:1000";
  launch.read_only_mounts = {"/srv/df models", "/srv/df data/input"};
  launch.writable_mounts = {"/srv/df data/output", "/srv/df data/temp"};
  return launch;
}

// The words of `argv` between the engine's `run` and the image (its options).
Words options_of(const Words& argv, const std::string& image) {
  const auto at = std::find(argv.begin(), argv.end(), image);
  EXPECT_NE(at, argv.end());
  return Words(argv.begin() + 2, at);
}

bool has_pair(const Words& words, const std::string& flag, const std::string& value) {
  for (size_t i = 0; i + 1 < words.size(); ++i) {
    if (words[i] == flag && words[i + 1] == value) return true;
  }
  return false;
}

TEST(RunnerContainerCommand, RunsTheImageInteractivelyLockedDownWithTheRunnersFlags) {
  const Words argv = container_run_argv(cpu_launch(), "dreamforge-runner-7-1", kRunnerArgv, {});
  ASSERT_GE(argv.size(), 3u);
  EXPECT_EQ(argv[0], "docker");
  EXPECT_EQ(argv[1], "run");
  const Words options = options_of(argv, "dreamforge-runner-cpu:latest");
  for (const std::string flag : {"-i", "--rm", "--read-only"}) {
    EXPECT_NE(std::find(options.begin(), options.end(), flag), options.end()) << flag;
  }
  EXPECT_TRUE(has_pair(options, "--name", "dreamforge-runner-7-1"));
  EXPECT_TRUE(has_pair(options, "--label", "dreamforge.runner=1"));
  EXPECT_TRUE(has_pair(options, "--label", "dreamforge.data-dir=/srv/df data"));
  EXPECT_TRUE(has_pair(options, "--label", "dreamforge.host=node-1"));
  EXPECT_TRUE(has_pair(options, "--network", "none"));
  EXPECT_TRUE(has_pair(options, "--tmpfs", "/tmp"));
  EXPECT_TRUE(has_pair(options, "--user", "1000:1000"));
  EXPECT_TRUE(has_pair(options, "--cap-drop", "ALL"));
  EXPECT_TRUE(has_pair(options, "--security-opt", "no-new-privileges"));
  // Each folder at its own path, so the protocol's paths need no translation; spaces kept whole.
  EXPECT_TRUE(has_pair(options, "-v", "/srv/df models:/srv/df models:ro"));
  EXPECT_TRUE(has_pair(options, "-v", "/srv/df data/input:/srv/df data/input:ro"));
  EXPECT_TRUE(has_pair(options, "-v", "/srv/df data/output:/srv/df data/output"));
  EXPECT_TRUE(has_pair(options, "-v", "/srv/df data/temp:/srv/df data/temp"));
  EXPECT_EQ(std::count(options.begin(), options.end(), "-v"), 4);
  // A CPU runner gets no GPU, no limit and nothing else.
  for (const std::string flag : {"--device", "--gpus", "--memory", "-e"}) {
    EXPECT_EQ(std::find(options.begin(), options.end(), flag), options.end()) << flag;
  }
  // The image's entrypoint is the runner: the flags follow the image, the executable does not.
  const Words tail(argv.end() - 4, argv.end());
  EXPECT_EQ(tail, Words(kRunnerArgv.begin() + 1, kRunnerArgv.end()));
  EXPECT_EQ(argv[argv.size() - 5], "dreamforge-runner-cpu:latest");
}

TEST(RunnerContainerCommand, EnvironmentGoesByNameOnlySoValuesNeverShowInTheProcessList) {
  const Words argv = container_run_argv(
      cpu_launch(), "n", kRunnerArgv,
      {"DREAMFORGE_COMFY_AUTH_HEADER=Authorization: Bearer s3cret", "CUDA_VISIBLE_DEVICES="});
  const Words options = options_of(argv, "dreamforge-runner-cpu:latest");
  EXPECT_TRUE(has_pair(options, "-e", "DREAMFORGE_COMFY_AUTH_HEADER"));
  EXPECT_TRUE(has_pair(options, "-e", "CUDA_VISIBLE_DEVICES"));
  for (const auto& word : argv) EXPECT_EQ(word.find("s3cret"), std::string::npos) << word;
}

TEST(RunnerContainerCommand, APinnedRunnerGetsItsGpuThroughCdiWithoutCudaVisibleDevices) {
  ContainerLaunch launch = cpu_launch();
  launch.gpu_device = "cuda:1";
  const Words argv = container_run_argv(
      launch, "n", kRunnerArgv, {"CUDA_VISIBLE_DEVICES=1", "CUDA_DEVICE_ORDER=PCI_BUS_ID"});
  const Words options = options_of(argv, "dreamforge-runner-cpu:latest");
  EXPECT_TRUE(has_pair(options, "--device", "nvidia.com/gpu=1"));
  // The container sees only its GPU, as device 0: CUDA_VISIBLE_DEVICES=1 would hide it.
  EXPECT_EQ(std::find(options.begin(), options.end(), "-e"), options.end());
}

TEST(RunnerContainerCommand, AnUnpinnedRunnerOnAGpuMachineGetsEveryGpu) {
  ContainerLaunch launch = cpu_launch();
  launch.gpu_device = "cuda";
  EXPECT_TRUE(has_pair(container_run_argv(launch, "n", kRunnerArgv, {}), "--device",
                       "nvidia.com/gpu=all"));
  launch.settings.gpus = GpuAccess::kDocker;
  EXPECT_TRUE(has_pair(container_run_argv(launch, "n", kRunnerArgv, {}), "--gpus", "all"));
}

TEST(RunnerContainerCommand, DockerGpuModeUsesGpusDeviceAndNoneGivesNoGpuFlags) {
  ContainerLaunch launch = cpu_launch();
  launch.gpu_device = "cuda:0";
  launch.settings.gpus = GpuAccess::kDocker;
  Words options =
      options_of(container_run_argv(launch, "n", kRunnerArgv, {}), launch.settings.image);
  EXPECT_TRUE(has_pair(options, "--gpus", "device=0"));
  EXPECT_EQ(std::find(options.begin(), options.end(), "--device"), options.end());
  launch.settings.gpus = GpuAccess::kNone;
  options = options_of(container_run_argv(launch, "n", kRunnerArgv, {"CUDA_VISIBLE_DEVICES=0"}),
                       launch.settings.image);
  EXPECT_EQ(std::find(options.begin(), options.end(), "--gpus"), options.end());
  EXPECT_EQ(std::find(options.begin(), options.end(), "--device"), options.end());
  EXPECT_TRUE(has_pair(options, "-e", "CUDA_VISIBLE_DEVICES"));
}

TEST(RunnerContainerCommand, PodmanMemoryNetworkAndExtraArgumentsGoBeforeTheImage) {
  ContainerLaunch launch = cpu_launch();
  launch.settings.engine = "podman";
  launch.settings.memory = "6g";
  launch.settings.network = "host";
  launch.settings.extra_args = {"--userns=keep-id", "--runtime", "crun"};
  const Words argv = container_run_argv(launch, "n", kRunnerArgv, {});
  EXPECT_EQ(argv[0], "podman");
  const Words options = options_of(argv, "dreamforge-runner-cpu:latest");
  EXPECT_TRUE(has_pair(options, "--memory", "6g"));
  EXPECT_TRUE(has_pair(options, "--network", "host"));
  const Words last(options.end() - 3, options.end());
  EXPECT_EQ(last, launch.settings.extra_args);
}

TEST(RunnerContainerCommand, RefusesMountsItCannotExpressAndAMissingImage) {
  ContainerLaunch launch = cpu_launch();
  launch.writable_mounts = {"/data/a:b"};
  EXPECT_EQ(test::error_code_of([&] { container_run_argv(launch, "n", kRunnerArgv, {}); }),
            ErrorCode::kInvalidArgument);
  launch.writable_mounts = {"relative/output"};
  EXPECT_EQ(test::error_code_of([&] { container_run_argv(launch, "n", kRunnerArgv, {}); }),
            ErrorCode::kInvalidArgument);
  launch = cpu_launch();
  launch.settings.image = "";
  EXPECT_EQ(test::error_code_of([&] { container_run_argv(launch, "n", kRunnerArgv, {}); }),
            ErrorCode::kInvalidArgument);
}

TEST(RunnerContainerCommand, RemoveInspectAndListCommands) {
  EXPECT_EQ(container_remove_argv("podman", "dreamforge-runner-7-2"),
            (Words{"podman", "rm", "-f", "dreamforge-runner-7-2"}));
  EXPECT_EQ(container_pid_argv("docker", "x"),
            (Words{"docker", "inspect", "--format", "{{.State.Pid}}", "x"}));
  EXPECT_EQ(runner_containers_argv("docker", "/srv/data", "node-1"),
            (Words{"docker", "ps", "-a", "--filter", "label=dreamforge.runner=1", "--filter",
                   "label=dreamforge.data-dir=/srv/data", "--filter",
                   "label=dreamforge.host=node-1", "--format", "{{.Names}}"}));
}

TEST(RunnerContainerCommand, NamesCarryTheWorkersProcessId) {
  EXPECT_EQ(runner_container_name(4321, 7), "dreamforge-runner-4321-7");
  EXPECT_EQ(runner_container_owner("dreamforge-runner-4321-7"), 4321);
  EXPECT_EQ(runner_container_owner("dreamforge-runner-x-7"), 0);
  EXPECT_EQ(runner_container_owner("dreamforge-runner-12"), 0);
  EXPECT_EQ(runner_container_owner("someone-else-12-1"), 0);
}

}  // namespace
}  // namespace df::runner

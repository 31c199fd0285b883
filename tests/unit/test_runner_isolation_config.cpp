// Unit tests for runners.yaml: per-kind isolation, the container fields, defaults and each error.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "core/error.h"
#include "runner/container/runners_config.h"
#include "test_support.h"

namespace df::runner {
namespace {

// The error parse_runners_config throws for `yaml`.
Error parse_error(const std::string& yaml) {
  return test::error_of([&] { parse_runners_config(yaml, "runners.yaml"); });
}

// The line the error names in its details, and its message.
void expect_error_at(const std::string& yaml, int line, const std::string& words) {
  const Error error = parse_error(yaml);
  EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument) << yaml;
  EXPECT_EQ(error.details().value("line", 0), line) << error.what();
  EXPECT_EQ(error.details().value("file", ""), "runners.yaml");
  const std::string message = error.what();
  EXPECT_TRUE(message.starts_with("runners.yaml:" + std::to_string(line) + ": ")) << message;
  EXPECT_NE(message.find(words), std::string::npos) << message;
}

TEST(RunnerIsolationConfig, ReadsAContainerKindWithEveryField) {
  const RunnersConfig config = parse_runners_config(R"(native:
  isolation: container
  engine: podman
  image: dreamforge-runner-cuda:1.2
  gpus: docker
  memory: 8g
  network: host
  extra_args: ["--runtime=nvidia", "--userns=keep-id"]
comfy:
  isolation: subprocess
)", "runners.yaml");
  EXPECT_EQ(config.native.isolation, Isolation::kContainer);
  const ContainerSettings& container = config.native.container;
  EXPECT_EQ(container.engine, "podman");
  EXPECT_EQ(container.image, "dreamforge-runner-cuda:1.2");
  EXPECT_EQ(container.gpus, GpuAccess::kDocker);
  EXPECT_EQ(container.memory, "8g");
  EXPECT_EQ(container.network, "host");
  EXPECT_EQ(container.extra_args,
            (std::vector<std::string>{"--runtime=nvidia", "--userns=keep-id"}));
  EXPECT_EQ(config.comfy.isolation, Isolation::kSubprocess);
}

TEST(RunnerIsolationConfig, AContainerKindDefaultsToDockerCdiNoNetworkAndNoLimit) {
  const RunnersConfig config =
      parse_runners_config("comfy:\n  isolation: container\n  image: comfy-runner\n", "r.yaml");
  EXPECT_EQ(config.native.isolation, Isolation::kSubprocess);
  EXPECT_EQ(config.comfy.isolation, Isolation::kContainer);
  EXPECT_EQ(config.comfy.container.engine, "docker");
  EXPECT_EQ(config.comfy.container.gpus, GpuAccess::kCdi);
  EXPECT_EQ(config.comfy.container.network, "none");
  EXPECT_EQ(config.comfy.container.memory, "");
  EXPECT_TRUE(config.comfy.container.extra_args.empty());
}

TEST(RunnerIsolationConfig, AnEngineMayBeTheAbsolutePathOfAClient) {
  const RunnersConfig config = parse_runners_config(
      "native:\n  isolation: container\n  image: r\n  engine: /opt/bin/docker\n  gpus: none\n",
      "r.yaml");
  EXPECT_EQ(config.native.container.engine, "/opt/bin/docker");
  EXPECT_EQ(config.native.container.gpus, GpuAccess::kNone);
}

TEST(RunnerIsolationConfig, AnEmptyFileOrAnEmptyKindMeansSubprocesses) {
  for (const std::string yaml : {"", "native:\n", "# nothing yet\n"}) {
    const RunnersConfig config = parse_runners_config(yaml, "runners.yaml");
    EXPECT_EQ(config.native.isolation, Isolation::kSubprocess) << yaml;
    EXPECT_EQ(config.comfy.isolation, Isolation::kSubprocess) << yaml;
  }
}

TEST(RunnerIsolationConfig, AMissingFileIsTheDefaultsAndAPresentOneIsRead) {
  const test::TestDir dir("df_runners_config_");
  const auto path = runners_config_path(dir.path().string());
  EXPECT_EQ(path, dir.path() / "config" / "runners.yaml");
  EXPECT_EQ(load_runners_config(path).native.isolation, Isolation::kSubprocess);
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << "native:\n  isolation: container\n  image: dreamforge-runner-cpu\n";
  EXPECT_EQ(load_runners_config(path).native.container.image, "dreamforge-runner-cpu");
  std::ofstream(path) << "native:\n  isolation: jail\n";
  const Error error = test::error_of([&] { load_runners_config(path); });
  EXPECT_NE(std::string(error.what()).find(path.string() + ":2: "), std::string::npos)
      << error.what();
}

TEST(RunnerIsolationConfig, NamesTheLineOfEachMistake) {
  expect_error_at("native:\n  isolation: container\n  image: r\nvm:\n  isolation: container\n", 4,
                  "unknown runner kind 'vm'");
  expect_error_at("native:\n  isolation: container\n  image: r\n  cpus: 2\n", 4,
                  "unknown field of runner kind 'native' 'cpus'");
  expect_error_at("native:\n  isolation: chroot\n", 2, "isolation 'chroot' must be one of");
  expect_error_at("native:\n  isolation: container\n  gpus: cdi\n", 2, "no 'image'");
  expect_error_at("native:\n  isolation: container\n  image: r\n  gpus: amd\n", 4,
                  "gpus 'amd' must be one of cdi | docker | none");
  expect_error_at("native:\n  isolation: container\n  image: r\n  engine: nerdctl\n", 4,
                  "engine 'nerdctl' must be docker, podman or the absolute path");
  expect_error_at("native:\n  isolation: container\n  image: r\n  memory: lots\n", 4,
                  "memory 'lots' is not a size");
  expect_error_at("native:\n  isolation: container\n  image: r\n  network: bridge\n", 4,
                  "network 'bridge' must be one of none | host");
  expect_error_at("native:\n  isolation: container\n  image: r\n  extra_args: --privileged\n", 4,
                  "extra_args must be a list");
  expect_error_at("native:\n  isolation: container\n  image: r\n  extra_args: [\"\"]\n", 4,
                  "each of extra_args must be a non-empty string");
  expect_error_at("native:\n  isolation: container\n  image: \"-v /:/host\"\n", 3,
                  "is not an image reference");
  expect_error_at("native:\n  image: r\n", 2, "field 'image' applies only to isolation: container");
  expect_error_at("native:\n  isolation: container\n  isolation: subprocess\n", 3, "appears twice");
  expect_error_at("- native\n", 1, "must be a mapping of runner kinds");
  expect_error_at("native: container\n", 1, "runner kind 'native' must be a mapping");
  expect_error_at("native:\n  isolation: [container]\n", 2, "isolation must be a single value");
  expect_error_at("native:\n  isolation: container\n   image: r\n", 3, "YAML syntax error");
}

}  // namespace
}  // namespace df::runner

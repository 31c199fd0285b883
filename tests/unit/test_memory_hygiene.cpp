// Tests of memory hygiene's decisions: device names, the runner's memory report, AC-1's check, the
// GPU peak, which failures retire a runner, and the bounded wait for a stopped runner's memory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <deque>
#include <fstream>

#include "test_support.h"
#include "worker/memory_hygiene.h"

namespace df::worker {
namespace {

using nlohmann::json;

constexpr int64_t kMiB = int64_t{1} << 20;

TEST(MemoryHygiene, CudaDeviceIndexReadsTheGpuOfADeviceName) {
  EXPECT_EQ(cuda_device_index("cuda"), 0);
  EXPECT_EQ(cuda_device_index("cuda:0"), 0);
  EXPECT_EQ(cuda_device_index("cuda:3"), 3);
  EXPECT_EQ(cuda_device_index("cpu"), std::nullopt);
  EXPECT_EQ(cuda_device_index("cuda:"), std::nullopt);
  EXPECT_EQ(cuda_device_index("cuda:x"), std::nullopt);
  EXPECT_EQ(cuda_device_index("mps"), std::nullopt);
}

TEST(MemoryHygiene, RunnerReportCountsModelsWhereTheStepIsMeasured) {
  const json event = {
      {"type", "run_finished"},
      {"memory",
       {{"device", "cuda:0"},
        {"process_rss_bytes", 900 * kMiB},
        {"allocator",
         {{"allocated_bytes", 300 * kMiB}, {"reserved_bytes", 400 * kMiB},
          {"peak_allocated_bytes", 2000 * kMiB}}},
        {"models", {{"device_bytes", 250 * kMiB}, {"host_bytes", 50 * kMiB}, {"loaded", json::array()}}}}}};
  const auto on_gpu = read_runner_memory(event, "cuda");
  EXPECT_EQ(on_gpu.models_bytes, 250 * kMiB);
  EXPECT_EQ(on_gpu.allocated_bytes, 300 * kMiB);
  EXPECT_EQ(on_gpu.reserved_bytes, 400 * kMiB);
  EXPECT_EQ(on_gpu.peak_allocated_bytes, 2000 * kMiB);
  EXPECT_EQ(read_runner_memory(event, "process_rss").models_bytes, 300 * kMiB);
  EXPECT_TRUE(on_gpu.reported);
  EXPECT_TRUE(on_gpu.has_allocator);
}

TEST(MemoryHygiene, TheReportNamesTheModelsTheRunnerHoldsWarm) {
  const json event = {{"memory",
                       {{"device", "cpu"},
                        {"models",
                         {{"device_bytes", 0},
                          {"host_bytes", 20 * kMiB},
                          {"loaded", {{{"kind", "checkpoint"}, {"name", "sd15.safetensors"}},
                                      {{"kind", "vae"}, {"name", "vae.safetensors"}},
                                      {{"kind", "vae"}}}}}}}}};
  const auto report = read_runner_memory(event, "process_rss");
  EXPECT_TRUE(report.reported);
  EXPECT_FALSE(report.has_allocator);  // a CPU runner has no caching allocator to report
  EXPECT_EQ(report.models, (std::vector<std::string>{"sd15.safetensors", "vae.safetensors"}));
}

TEST(MemoryHygiene, ARunnerWithoutAReportReadsAsZero) {
  for (const json& event : {json{{"type", "run_finished"}}, json{{"memory", nullptr}},
                            json{{"memory", {{"models", "garbled"}}}}}) {
    const auto report = read_runner_memory(event, "cuda");
    EXPECT_EQ(report.models_bytes, 0);
    EXPECT_EQ(report.allocated_bytes, 0);
    EXPECT_EQ(report.peak_allocated_bytes, 0);
    EXPECT_TRUE(report.models.empty());
  }
}

StepMemory step(int64_t before, int64_t after, int64_t models_before = 0, int64_t models_after = 0) {
  StepMemory memory;
  memory.memory_kind = "cuda";
  memory.device = "cuda:0";
  memory.gpu_mem_used_before = before;
  memory.gpu_mem_used_after = after;
  memory.models_bytes_before = models_before;
  memory.models_bytes_after = models_after;
  return memory;
}

TEST(MemoryHygiene, MemoryIsReturnedWhenAfterIsWithinEpsilonOfBefore) {
  EXPECT_TRUE(memory_returned(step(1000 * kMiB, 1000 * kMiB), 64 * kMiB));
  EXPECT_TRUE(memory_returned(step(1000 * kMiB, 900 * kMiB), 64 * kMiB));
  EXPECT_TRUE(memory_returned(step(1000 * kMiB, 1064 * kMiB), 64 * kMiB));  // the bound holds
  EXPECT_FALSE(memory_returned(step(1000 * kMiB, 1064 * kMiB + 1), 64 * kMiB));
  EXPECT_FALSE(memory_returned(step(1000 * kMiB, 1001 * kMiB), 0));
}

TEST(MemoryHygiene, ModelsTheRunnerKeepsWarmDoNotCountAsLeftBehind) {
  // The step loaded a 2 GiB model into the cache: it stays on purpose.
  EXPECT_TRUE(memory_returned(step(500 * kMiB, 2548 * kMiB, 0, 2048 * kMiB), 64 * kMiB));
  // The cache evicted a model: what went back does not hide growth elsewhere.
  EXPECT_FALSE(memory_returned(step(2548 * kMiB, 1600 * kMiB, 2048 * kMiB, 1000 * kMiB), 64 * kMiB));
  // Without a report of the models, a load counts as growth.
  EXPECT_FALSE(memory_returned(step(500 * kMiB, 2548 * kMiB), 64 * kMiB));
}

TEST(MemoryHygiene, TheCudaContextOfARunnersFirstGpuStepIsNotLeftBehind) {
  RunnerMemoryReport end;
  end.reserved_bytes = 2100 * kMiB;  // the 2 GiB model and 52 MiB the allocator kept
  // NVML: nothing before; after, the model, the allocator's rest and a 500 MiB context.
  const int64_t context = cuda_context_created(0, 2600 * kMiB, end);
  EXPECT_EQ(context, 500 * kMiB);
  StepMemory first = step(0, 2600 * kMiB, 0, 2048 * kMiB);
  first.cuda_context_bytes = context;
  EXPECT_TRUE(memory_returned(first, 64 * kMiB));
  // The allocator kept 352 MiB beyond the model: that is left behind, context or not.
  end.reserved_bytes = 2400 * kMiB;
  StepMemory kept = step(0, 2900 * kMiB, 0, 2048 * kMiB);
  kept.cuda_context_bytes = cuda_context_created(0, 2900 * kMiB, end);
  EXPECT_EQ(kept.cuda_context_bytes, 500 * kMiB);
  EXPECT_FALSE(memory_returned(kept, 64 * kMiB));
  // A later step: the context exists already, so none is created.
  EXPECT_EQ(cuda_context_created(2600 * kMiB, 2700 * kMiB, end), 0);
  EXPECT_EQ(cuda_context_created(0, 2600 * kMiB, {}), 0);  // no allocator report
}

TEST(MemoryHygiene, GpuPeakTakesTheAllocatorsGrowthWhenSamplesMissedIt) {
  RunnerMemoryReport start, end;
  start.allocated_bytes = 300 * kMiB;
  end.peak_allocated_bytes = 2300 * kMiB;  // grew by 2000 MiB during the run
  EXPECT_EQ(gpu_step_peak(900 * kMiB, 800 * kMiB, start, end), 2800 * kMiB);
  EXPECT_EQ(gpu_step_peak(5000 * kMiB, 800 * kMiB, start, end), 5000 * kMiB);
  EXPECT_EQ(gpu_step_peak(900 * kMiB, 800 * kMiB, {}, {}), 900 * kMiB);  // no report
}

TEST(MemoryHygiene, FailuresThatLeaveTheRunnerUntrustedRetireIt) {
  for (const char* code : {"oom", "internal", "runner_crashed", "timeout"}) {
    EXPECT_TRUE(failure_retires_runner(code)) << code;
  }
  for (const char* code : {"validation", "model_not_found", "canceled", "io_error", "unavailable"}) {
    EXPECT_FALSE(failure_retires_runner(code)) << code;
  }
}

// Readings in order, on a clock that moves only when the wait sleeps.
struct ScriptedRelease {
  std::deque<std::optional<int64_t>> readings;
  int64_t now = 1000;
  std::vector<int64_t> sleeps{};

  ReleaseWaitSources sources() {
    return {[this] {
              auto reading = readings.front();
              if (readings.size() > 1) readings.pop_front();
              return reading;
            },
            [this] { return now; },
            [this](int64_t ms) {
              sleeps.push_back(ms);
              now += ms;
            }};
  }
};

TEST(MemoryHygiene, ReleaseWaitEndsAtTheFirstReadingThatSaysReleased) {
  ScriptedRelease script{{int64_t{512 * kMiB}, int64_t{128 * kMiB}, std::nullopt}};
  const auto wait = wait_for_release(script.sources(), 10000, 50);
  EXPECT_TRUE(wait.released);
  EXPECT_EQ(wait.waited_ms, 100);
  EXPECT_EQ(wait.held_bytes, 0);
  EXPECT_EQ(script.sleeps, (std::vector<int64_t>{50, 50}));
}

TEST(MemoryHygiene, ReleaseWaitOfAnAlreadyReleasedRunnerDoesNotSleep) {
  ScriptedRelease script{{std::nullopt}};
  const auto wait = wait_for_release(script.sources(), 10000, 50);
  EXPECT_TRUE(wait.released);
  EXPECT_EQ(wait.waited_ms, 0);
  EXPECT_TRUE(script.sleeps.empty());
}

TEST(MemoryHygiene, ReleaseWaitGivesUpAtItsBoundWithWhatIsStillHeld) {
  ScriptedRelease script{{int64_t{300 * kMiB}}};
  const auto wait = wait_for_release(script.sources(), 120, 50);
  EXPECT_FALSE(wait.released);
  EXPECT_EQ(wait.waited_ms, 120);
  EXPECT_EQ(wait.held_bytes, 300 * kMiB);
  EXPECT_EQ(script.sleeps, (std::vector<int64_t>{50, 50, 20}));  // never past the bound
}

TEST(MemoryHygiene, ReleaseWaitWithAZeroBoundReadsOnce) {
  ScriptedRelease script{{int64_t{1}}};
  const auto wait = wait_for_release(script.sources(), 0, 50);
  EXPECT_FALSE(wait.released);
  EXPECT_TRUE(script.sleeps.empty());
}

TEST(MemoryHygiene, CpuProbeReadsProcessMemoryAndTheMachinesAvailableMemory) {
  const RunnerMemoryProbe probe("cpu", nullptr);
  EXPECT_EQ(probe.memory_kind(), "process_rss");
  EXPECT_GT(probe.used(getpid()), 0);
  EXPECT_GE(probe.peak(getpid()), probe.used(getpid()) / 2);
  EXPECT_GT(probe.free_bytes(), 0);
  EXPECT_TRUE(probe.held_after_stop(getpid()).has_value());  // this process is alive
}

TEST(MemoryHygiene, CpuProbeSaysAGoneProcessReleasedItsMemory) {
  const RunnerMemoryProbe probe("cpu", nullptr);
  constexpr pid_t kNoSuchPid = (1 << 22) + 12345;  // above Linux's largest pid_max
  EXPECT_EQ(probe.held_after_stop(kNoSuchPid), std::nullopt);
  EXPECT_EQ(probe.used(kNoSuchPid), 0);
}

// A GPU runner read through NVML (the stand-in library built with the tests).
TEST(MemoryHygiene, GpuProbeReadsTheRunnersMemoryOnItsDeviceThroughNvml) {
  test::TestDir dir{"df_memory_hygiene_"};
  const auto config = dir.path() / "nvml.txt";
  std::ofstream(config) << "device 85899345920 80000000000 5899345920 GPU-aaaa-0001 NVIDIA H100\n"
                           "device 25769803776 25000000000 769803776 GPU-bbbb-0002 NVIDIA L4\n"
                           "compute 1 4242 1073741824\n"
                           "compute 1 5151 2147483648\n";
  ::setenv("DF_STANDIN_NVML_CONFIG", config.c_str(), 1);
  const auto nvml = gpu::Nvml::open(DF_STANDIN_NVML);
  ::unsetenv("DF_STANDIN_NVML_CONFIG");
  ASSERT_NE(nvml, nullptr);
  const RunnerMemoryProbe probe("cuda:1", nvml);
  EXPECT_EQ(probe.memory_kind(), "cuda");
  EXPECT_EQ(probe.used(4242), int64_t{1} << 30);
  EXPECT_EQ(probe.peak(4242), int64_t{1} << 30);
  EXPECT_EQ(probe.free_bytes(), 25000000000);
  EXPECT_EQ(probe.held_after_stop(4242), int64_t{1} << 30);
  EXPECT_EQ(probe.held_after_stop(7777), std::nullopt);  // NVML lists nothing for it
  EXPECT_EQ(RunnerMemoryProbe("cuda:0", nvml).held_after_stop(4242), std::nullopt);
}

TEST(MemoryHygiene, ACudaDeviceWithoutNvmlIsMeasuredAsProcessMemory) {
  EXPECT_EQ(RunnerMemoryProbe("cuda:0", nullptr).memory_kind(), "process_rss");
}

}  // namespace
}  // namespace df::worker

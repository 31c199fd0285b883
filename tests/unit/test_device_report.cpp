// Tests of the /v1 API's device report: health's devices with their runners, the GPU memory gauges.
#include <gtest/gtest.h>

#include "api/device_report.h"
#include "core/json_schema.h"
#include "telemetry/service_metrics.h"

namespace df::api {
namespace {

using nlohmann::json;

gpu::RunnerState runner(const std::string& id, std::optional<int> index, pid_t pid) {
  gpu::RunnerState state;
  state.worker_id = id;
  state.device = index ? "cuda:" + std::to_string(*index) : "cpu";
  state.device_index = index;
  state.pid = pid;
  state.state = "busy";
  state.models = {"sd15.safetensors"};
  state.models_bytes = 2000;
  state.memory_used_bytes = 2500;
  return state;
}

const std::vector<gpu::GpuDevice> kGpus = {{0, "NVIDIA H100 80GB HBM3", "GPU-a", 80000, 60000, 20000},
                                           {1, "NVIDIA L4", "GPU-b", 24000, 23000, 1000}};

TEST(DeviceReport, GpusThenTheCpuEachWithItsRunners) {
  const json devices = health_devices(
      kGpus, {runner("w1", 1, 101), runner("w0", std::nullopt, 100), runner("w2", 1, 102)},
      {16000, 12000});
  ASSERT_EQ(devices.size(), 3u);
  EXPECT_EQ(devices[0].at("device"), "cuda:0");
  EXPECT_EQ(devices[0].at("type"), "cuda");
  EXPECT_EQ(devices[0].at("index"), 0);
  EXPECT_EQ(devices[0].at("name"), "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(devices[0].at("uuid"), "GPU-a");
  EXPECT_EQ(devices[0].at("memory"),
            json({{"total_bytes", 80000}, {"free_bytes", 60000}, {"used_bytes", 20000}}));
  EXPECT_TRUE(devices[0].at("runners").empty());
  ASSERT_EQ(devices[1].at("runners").size(), 2u);
  EXPECT_EQ(devices[1].at("runners")[0],
            json({{"worker_id", "w1"},
                  {"runner_id", "native"},
                  {"pid", 101},
                  {"state", "busy"},
                  {"reason", ""},
                  {"models", {"sd15.safetensors"}},
                  {"models_bytes", 2000},
                  {"memory_used_bytes", 2500}}));
  EXPECT_EQ(devices[1].at("runners")[1].at("worker_id"), "w2");
  EXPECT_EQ(devices[2].at("device"), "cpu");
  EXPECT_EQ(devices[2].at("type"), "cpu");
  EXPECT_EQ(devices[2].at("memory"), json({{"total_bytes", 16000}, {"available_bytes", 12000}}));
  ASSERT_EQ(devices[2].at("runners").size(), 1u);
  EXPECT_EQ(devices[2].at("runners")[0].at("pid"), 100);
}

TEST(DeviceReport, RunnerOnAGpuNvmlDoesNotShow) {
  const json devices = health_devices({}, {runner("w3", 3, 103)}, {16000, 12000});
  ASSERT_EQ(devices.size(), 2u);
  EXPECT_EQ(devices[0].at("device"), "cuda:3");
  EXPECT_EQ(devices[0].at("index"), 3);
  EXPECT_TRUE(devices[0].at("memory").is_null());
  EXPECT_TRUE(devices[0].at("name").is_null());
  EXPECT_EQ(devices[0].at("runners").size(), 1u);
  EXPECT_EQ(devices[1].at("device"), "cpu");
  EXPECT_TRUE(devices[1].at("runners").empty());
}

TEST(DeviceReport, NotReadyOnlyWhenEveryRunnerLeftRotation) {
  EXPECT_FALSE(devices_unready({}));  // an API-only process: its workers run elsewhere
  gpu::RunnerState lost;
  lost.worker_id = "w1";
  lost.device = "cuda:7";
  lost.state = "out_of_rotation";
  lost.reason = "NVML has no GPU 7";
  gpu::RunnerState cpu;
  cpu.worker_id = "w0";
  cpu.state = "idle";
  EXPECT_FALSE(devices_unready({cpu, lost}));
  const auto why = devices_unready({lost});
  ASSERT_TRUE(why);
  EXPECT_EQ(*why, "every device is out of rotation: cuda:7 (NVML has no GPU 7)");
  gpu::RunnerState backend = cpu;
  backend.runner_id = "backend:studio";
  backend.device = "backend";
  EXPECT_FALSE(devices_unready({backend})) << "a front with backends only has no device to lose";
  EXPECT_TRUE(devices_unready({backend, lost})) << "a backend's runner holds no device of ours";
}

TEST(DeviceReport, RunnersThatDriveABackendAreNotOnTheMachinesDevices) {
  gpu::RunnerState backend;
  backend.worker_id = "b0";
  backend.runner_id = "backend:studio";
  backend.device = "backend";
  const json devices = health_devices({}, {backend, runner("w1", 0, 1)}, {16000, 12000});
  ASSERT_EQ(devices.size(), 2u);
  EXPECT_EQ(devices[0].at("runners").size(), 1u);
  EXPECT_EQ(devices[0].at("runners")[0].at("runner_id"), "native");
  EXPECT_TRUE(devices[1].at("runners").empty());
}

TEST(DeviceReport, HealthMatchesItsSchema) {
  const json health = {
      {"status", "ok"},
      {"devices", health_devices(kGpus, {runner("w1", 0, 1), runner("w3", 3, 3)}, {16000, 12000})},
      {"backends", json::array()}};
  EXPECT_TRUE(validate_against_schema(health_schema(), health).empty());
  EXPECT_FALSE(validate_against_schema(health_schema(), json({{"status", "ok"}})).empty());
}

TEST(DeviceReport, GpuMemoryGauges) {
  telemetry::Metrics metrics;
  telemetry::declare_service_metrics(metrics);
  record_gpu_memory(metrics, kGpus);
  std::string text = metrics.render();
  EXPECT_NE(text.find("dreamforge_gpu_memory_total_bytes{device=\"cuda:0\"} 80000"), std::string::npos);
  EXPECT_NE(text.find("dreamforge_gpu_memory_free_bytes{device=\"cuda:1\"} 23000"), std::string::npos);
  EXPECT_NE(text.find("dreamforge_gpu_memory_used_bytes{device=\"cuda:0\"} 20000"), std::string::npos);
  record_gpu_memory(metrics, {kGpus[1]});
  text = metrics.render();
  EXPECT_EQ(text.find("device=\"cuda:0\""), std::string::npos);  // a GPU gone leaves no series
  EXPECT_NE(text.find("dreamforge_gpu_memory_used_bytes{device=\"cuda:1\"} 1000"), std::string::npos);
}

}  // namespace
}  // namespace df::api

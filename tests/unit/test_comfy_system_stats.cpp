// Tests of GET /system_stats: memory from /proc/meminfo and the shape ComfyUI's frontend checks.
#include <gtest/gtest.h>

#include "api/comfy_system_stats.h"
#include "core/error.h"

namespace df::api {
namespace {

TEST(ComfySystemStats, MemoryFromMeminfo) {
  const MemoryInfo info = parse_meminfo(
      "MemTotal:       16318508 kB\nMemFree:         1000000 kB\nMemAvailable:   "
      "12000000 kB\nBuffers: 1 kB\n");
  EXPECT_EQ(info.total_bytes, 16318508LL * 1024);
  EXPECT_EQ(info.available_bytes, 12000000LL * 1024);
  EXPECT_THROW(parse_meminfo("MemTotal: 1 kB\nMemFree: 1 kB\n"), Error);
  EXPECT_THROW(parse_meminfo("MemTotalX: 1 kB\nMemAvailable: 1 kB\n"), Error);
}

TEST(ComfySystemStats, ShapeOfThisProcess) {
  const nlohmann::json stats = system_stats(nullptr, {});
  const nlohmann::json& system = stats.at("system");
  for (const char* key : {"os", "python_version", "comfyui_version", "pytorch_version"}) {
    EXPECT_TRUE(system.at(key).is_string()) << key;
  }
  EXPECT_EQ(system.at("embedded_python"), false);
  ASSERT_TRUE(system.at("argv").is_array());
  EXPECT_FALSE(system.at("argv").empty());
  EXPECT_GT(system.at("ram_total").get<int64_t>(), 0);
  ASSERT_EQ(stats.at("devices").size(), 1u);
  EXPECT_EQ(stats.at("devices")[0].at("index"), 0);
  EXPECT_EQ(stats.at("devices")[0].at("type"), "cpu");
}

TEST(ComfySystemStats, WithoutGpusTheCpuWithTheMachinesRam) {
  const nlohmann::json devices = comfy_devices({}, {}, {16000, 12000});
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices[0], nlohmann::json({{"name", "cpu"},
                                        {"type", "cpu"},
                                        {"index", 0},
                                        {"vram_total", 16000},
                                        {"vram_free", 12000},
                                        {"torch_vram_total", 16000},
                                        {"torch_vram_free", 12000}}));
}

TEST(ComfySystemStats, GpusAsComfyUiNamesCudaDevices) {
  const std::vector<gpu::GpuDevice> gpus = {
      {0, "NVIDIA H100 80GB HBM3", "GPU-a", 80000, 60000, 20000},
      {1, "NVIDIA L4", "GPU-b", 24000, 23000, 1000}};
  gpu::RunnerState on_first;
  on_first.worker_id = "host:1:0";
  on_first.device = "cuda:0";
  on_first.device_index = 0;
  on_first.allocator_reserved_bytes = 9000;
  on_first.allocator_allocated_bytes = 7000;
  gpu::RunnerState unreported = on_first;  // no allocator figures yet: adds nothing
  unreported.worker_id = "host:1:1";
  unreported.allocator_reserved_bytes.reset();
  unreported.allocator_allocated_bytes.reset();
  gpu::RunnerState on_cpu;
  on_cpu.worker_id = "host:1:2";
  const nlohmann::json devices = comfy_devices(gpus, {on_first, unreported, on_cpu}, {16000, 12000});
  ASSERT_EQ(devices.size(), 2u);
  EXPECT_EQ(devices[0].at("name"), "cuda:0 NVIDIA H100 80GB HBM3 : native");
  EXPECT_EQ(devices[0].at("type"), "cuda");
  EXPECT_EQ(devices[0].at("index"), 0);
  EXPECT_EQ(devices[0].at("vram_total"), 80000);
  EXPECT_EQ(devices[0].at("vram_free"), 60000 + 2000);  // free plus reserved but unused
  EXPECT_EQ(devices[0].at("torch_vram_total"), 9000);
  EXPECT_EQ(devices[0].at("torch_vram_free"), 2000);
  EXPECT_EQ(devices[1].at("name"), "cuda:1 NVIDIA L4 : native");
  EXPECT_EQ(devices[1].at("index"), 1);
  EXPECT_EQ(devices[1].at("vram_total"), 24000);
  EXPECT_EQ(devices[1].at("vram_free"), 23000);
  EXPECT_TRUE(devices[1].at("torch_vram_total").is_number());
  EXPECT_EQ(devices[1].at("torch_vram_total"), 0);
  EXPECT_EQ(devices[1].at("torch_vram_free"), 0);
}

}  // namespace
}  // namespace df::api

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
  const nlohmann::json stats = system_stats();
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

}  // namespace
}  // namespace df::api

// Tests of the device profile: device classes by memory, /proc/meminfo, configured GPU memory.
#include <gtest/gtest.h>

#include "core/error.h"
#include "registry/device_profile.h"
#include "test_support.h"

namespace df::registry {
namespace {

TEST(RoutingDeviceProfile, GpuClassesFollowTheCardsMemory) {
  EXPECT_EQ(gpu_device_class(6144), DeviceClass::kGpu8gb);
  EXPECT_EQ(gpu_device_class(8192), DeviceClass::kGpu8gb);
  EXPECT_EQ(gpu_device_class(10240), DeviceClass::kGpu8gb);
  EXPECT_EQ(gpu_device_class(12288), DeviceClass::kGpu12gb);
  EXPECT_EQ(gpu_device_class(16384), DeviceClass::kGpu12gb);
  EXPECT_EQ(gpu_device_class(24576), DeviceClass::kGpu24gb);
  EXPECT_EQ(gpu_device_class(81559), DeviceClass::kGpu24gb);
}

TEST(RoutingDeviceProfile, ClassNamesRoundTrip) {
  EXPECT_EQ(device_class_names(),
            (std::vector<std::string>{"cpu", "gpu-8gb", "gpu-12gb", "gpu-24gb"}));
  for (const auto& name : device_class_names()) {
    const auto device_class = device_class_from_name(name);
    ASSERT_TRUE(device_class) << name;
    EXPECT_EQ(device_class_name(*device_class), name);
  }
  EXPECT_FALSE(device_class_from_name("gpu-16gb"));
}

TEST(RoutingDeviceProfile, MemTotalIsReadFromMeminfoText) {
  EXPECT_EQ(meminfo_total_mb("MemTotal:       24684096 kB\nMemFree:        15774332 kB\n"),
            24105);
  EXPECT_EQ(meminfo_total_mb("Other: 1 kB\nMemTotal: 2097152 kB\n"), 2048);
  EXPECT_FALSE(meminfo_total_mb("MemFree: 1024 kB\n"));
  EXPECT_FALSE(meminfo_total_mb("MemTotal: lots kB\n"));
  EXPECT_FALSE(meminfo_total_mb("MemTotal: 1024 MB\n"));
  EXPECT_FALSE(meminfo_total_mb("XMemTotal: 1024 kB\n"));
}

TEST(RoutingDeviceProfile, CpuUsesTheSystemMemory) {
  const DeviceProfile cpu = device_profile("cpu", 8192, "DREAMFORGE_GPU_MEMORY_MB");
  EXPECT_EQ(cpu.device_class, DeviceClass::kCpu);
  EXPECT_GT(cpu.memory_mb, 0);
  EXPECT_EQ(device_profile("auto", std::nullopt, "X"), cpu);
}

TEST(RoutingDeviceProfile, GpuUsesTheConfiguredMemory) {
  EXPECT_EQ(device_profile("cuda", 8192, "X"), (DeviceProfile{DeviceClass::kGpu8gb, 8192}));
  EXPECT_EQ(device_profile("cuda:1", 24576, "X"), (DeviceProfile{DeviceClass::kGpu24gb, 24576}));
  EXPECT_EQ(device_profile("auto", 12288, "X"), (DeviceProfile{DeviceClass::kGpu12gb, 12288}));
}

TEST(RoutingDeviceProfile, AGpuWithoutConfiguredMemoryOrAnUnknownDeviceIsAnError) {
  const Error missing =
      test::error_of([] { device_profile("cuda", std::nullopt, "DREAMFORGE_GPU_MEMORY_MB"); });
  EXPECT_EQ(missing.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(std::string(missing.what()).find("DREAMFORGE_GPU_MEMORY_MB"), std::string::npos)
      << missing.what();
  EXPECT_EQ(test::error_code_of([] { device_profile("cuda", 0, "X"); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of([] { device_profile("tpu", 8192, "X"); }),
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace df::registry

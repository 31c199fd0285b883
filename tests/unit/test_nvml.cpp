// Tests of the NVML wrapper against the stand-in library built with the tests (DF_STANDIN_NVML).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "gpu/nvml.h"
#include "test_support.h"

namespace df::gpu {
namespace {

constexpr const char* kTwoDevices =
    "device 85899345920 80000000000 5899345920 GPU-aaaa-0001 NVIDIA H100 80GB HBM3\n"
    "device 25769803776 25000000000 769803776 GPU-bbbb-0002 NVIDIA L4\n";

class NvmlTest : public ::testing::Test {
 protected:
  // The stand-in reads `text` at nvmlInit_v2.
  void configure(const std::string& text) {
    const auto path = dir_.path() / "nvml.txt";
    std::ofstream(path) << text;
    ::setenv("DF_STANDIN_NVML_CONFIG", path.c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("DF_STANDIN_NVML_CONFIG");
    ::unsetenv("DREAMFORGE_NVML_LIBRARY");
  }

  test::TestDir dir_{"df_nvml_"};
};

TEST_F(NvmlTest, AbsentLibraryIsNoNvml) {
  EXPECT_EQ(Nvml::open((dir_.path() / "libnvidia-ml-absent.so.1").string()), nullptr);
  ::setenv("DREAMFORGE_NVML_LIBRARY", (dir_.path() / "also-absent.so").c_str(), 1);
  EXPECT_EQ(Nvml::open(), nullptr);
}

TEST_F(NvmlTest, LibraryWithoutNvmlSymbolsIsNoNvml) {
  EXPECT_EQ(Nvml::open("libc.so.6"), nullptr);
}

TEST_F(NvmlTest, FailingInitIsNoNvml) {
  configure(std::string("init_fails\n") + kTwoDevices);
  EXPECT_EQ(Nvml::open(DF_STANDIN_NVML), nullptr);
}

TEST_F(NvmlTest, LibraryFromEnvironment) {
  configure(kTwoDevices);
  ::setenv("DREAMFORGE_NVML_LIBRARY", DF_STANDIN_NVML, 1);
  const auto nvml = Nvml::open();
  ASSERT_NE(nvml, nullptr);
  EXPECT_EQ(nvml->devices().size(), 2u);
}

TEST_F(NvmlTest, DevicesWithNamesUuidsAndMemory) {
  configure(kTwoDevices);
  const auto nvml = Nvml::open(DF_STANDIN_NVML);
  ASSERT_NE(nvml, nullptr);
  const auto devices = nvml->devices();
  ASSERT_EQ(devices.size(), 2u);
  EXPECT_EQ(devices[0].index, 0);
  EXPECT_EQ(devices[0].name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(devices[0].uuid, "GPU-aaaa-0001");
  EXPECT_EQ(devices[0].total_bytes, 85899345920LL);
  EXPECT_EQ(devices[0].free_bytes, 80000000000LL);
  EXPECT_EQ(devices[0].used_bytes, 5899345920LL);
  EXPECT_EQ(devices[1].index, 1);
  EXPECT_EQ(devices[1].name, "NVIDIA L4");
  EXPECT_EQ(devices[1].uuid, "GPU-bbbb-0002");
  EXPECT_EQ(devices[1].total_bytes, 25769803776LL);
  const auto second = nvml->device(1);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->name, "NVIDIA L4");
  EXPECT_EQ(second->free_bytes, 25000000000LL);
}

TEST_F(NvmlTest, DeviceOutOfRangeIsNullopt) {
  configure(kTwoDevices);
  const auto nvml = Nvml::open(DF_STANDIN_NVML);
  ASSERT_NE(nvml, nullptr);
  EXPECT_FALSE(nvml->device(2).has_value());
  EXPECT_FALSE(nvml->device(-1).has_value());
  EXPECT_TRUE(nvml->processes(2).empty());
  EXPECT_EQ(nvml->process_memory(2, 100), 0);
}

TEST_F(NvmlTest, NoDevices) {
  configure("");
  const auto nvml = Nvml::open(DF_STANDIN_NVML);
  ASSERT_NE(nvml, nullptr);
  EXPECT_TRUE(nvml->devices().empty());
  EXPECT_FALSE(nvml->device(0).has_value());
}

TEST_F(NvmlTest, ProcessesAndTheirMemory) {
  configure(std::string(kTwoDevices) +
            "compute 0 100 1073741824\n"
            "compute 0 200 na\n"
            "graphics 0 300 524288\n"
            "compute 0 400 2048\n"
            "graphics 0 400 2048\n"  // compute and graphics: counted once
            "compute 1 500 4096\n"
            "compute 1 500 8192\n");  // one process on two MIG instances: added up
  const auto nvml = Nvml::open(DF_STANDIN_NVML);
  ASSERT_NE(nvml, nullptr);
  const auto first = nvml->processes(0);
  ASSERT_EQ(first.size(), 4u);
  EXPECT_EQ(first[0].pid, 100);
  EXPECT_EQ(first[0].used_bytes, 1073741824LL);
  EXPECT_EQ(first[1].pid, 200);
  EXPECT_EQ(first[1].used_bytes, 0);  // not available
  EXPECT_EQ(first[2].pid, 300);
  EXPECT_EQ(first[2].used_bytes, 524288);
  EXPECT_EQ(first[3].pid, 400);
  EXPECT_EQ(first[3].used_bytes, 2048);
  EXPECT_EQ(nvml->process_memory(0, 100), 1073741824LL);
  EXPECT_EQ(nvml->process_memory(0, 300), 524288);
  EXPECT_EQ(nvml->process_memory(0, 500), 0);  // on the other device
  EXPECT_EQ(nvml->process_memory(1, 500), 4096 + 8192);
  EXPECT_EQ(nvml->processes(1).size(), 1u);
}

TEST_F(NvmlTest, ProcessListAskedAgainWhenProcessesStartMeanwhile) {
  std::string config = std::string(kTwoDevices) + "late_processes 5\n";
  for (int pid = 1000; pid < 1012; ++pid) {
    config += "compute 0 " + std::to_string(pid) + " " + std::to_string(pid * 10) + "\n";
  }
  configure(config);
  const auto nvml = Nvml::open(DF_STANDIN_NVML);
  ASSERT_NE(nvml, nullptr);
  const auto processes = nvml->processes(0);
  ASSERT_EQ(processes.size(), 12u);
  for (size_t i = 0; i < processes.size(); ++i) {
    EXPECT_EQ(processes[i].pid, static_cast<pid_t>(1000 + i));
    EXPECT_EQ(processes[i].used_bytes, static_cast<int64_t>((1000 + i) * 10));
  }
}

TEST_F(NvmlTest, NoProcesses) {
  configure(kTwoDevices);
  const auto nvml = Nvml::open(DF_STANDIN_NVML);
  ASSERT_NE(nvml, nullptr);
  EXPECT_TRUE(nvml->processes(0).empty());
  EXPECT_EQ(nvml->process_memory(0, ::getpid()), 0);
}

TEST(SystemNvml, OpenedOncePerProcess) { EXPECT_EQ(system_nvml(), system_nvml()); }

}  // namespace
}  // namespace df::gpu

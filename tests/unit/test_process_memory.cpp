// Tests of process and machine memory read from /proc: RSS, high-water mark, zombies, resets.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "worker/process_memory.h"

namespace df::worker {
namespace {

// A pid above Linux's largest pid_max (2^22), so it never names a process.
constexpr pid_t kNoSuchPid = (1 << 22) + 12345;

TEST(ProcessMemory, ReadsOwnResidentAndPeakMemory) {
  const auto memory = read_process_memory(getpid());
  ASSERT_TRUE(memory);
  EXPECT_GT(memory->resident_bytes, 1024 * 1024);
  EXPECT_GE(memory->peak_bytes, memory->resident_bytes);
  EXPECT_EQ(memory->resident_bytes % 1024, 0) << "kB from /proc in bytes";
}

TEST(ProcessMemory, PeakRemembersMemoryThatWasGivenBack) {
  constexpr size_t kSize = 64 << 20;
  void* block = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(block, MAP_FAILED);
  std::memset(block, 1, kSize);
  const int64_t resident_with_block = read_process_memory(getpid())->resident_bytes;
  munmap(block, kSize);
  const auto after = read_process_memory(getpid());
  ASSERT_TRUE(after);
  EXPECT_LE(after->resident_bytes, resident_with_block - static_cast<int64_t>(kSize) / 2);
  // The kernel updates the high-water mark lazily, so it may trail the last RSS reading a little.
  EXPECT_GE(after->peak_bytes, after->resident_bytes + static_cast<int64_t>(kSize) / 2);
}

TEST(ProcessMemory, ResetStartsAFreshHighWaterMark) {
  constexpr size_t kSize = 64 << 20;
  void* block = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(block, MAP_FAILED);
  std::memset(block, 1, kSize);
  munmap(block, kSize);
  const int64_t peak_with_block = read_process_memory(getpid())->peak_bytes;
  reset_peak_memory(getpid());
  const auto after = read_process_memory(getpid());
  ASSERT_TRUE(after);
  if (after->peak_bytes == peak_with_block) {
    GTEST_SKIP() << "this kernel does not reset VmHWM through clear_refs";
  }
  EXPECT_LT(after->peak_bytes, peak_with_block);
  EXPECT_GE(after->peak_bytes, after->resident_bytes);
}

TEST(ProcessMemory, ResetOfAMissingProcessIsHarmless) {
  EXPECT_NO_THROW(reset_peak_memory(kNoSuchPid));
}

TEST(ProcessMemory, MissingProcessHasNoMemory) {
  EXPECT_FALSE(read_process_memory(kNoSuchPid));
  EXPECT_FALSE(process_exists(kNoSuchPid));
}

TEST(ProcessMemory, ZombieExistsUntilReaped) {
  EXPECT_TRUE(process_exists(getpid()));
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  // The child exits at once; unreaped it is a zombie and still has a /proc entry.
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT), 0);
  EXPECT_TRUE(process_exists(child));
  EXPECT_FALSE(read_process_memory(child)) << "a zombie has no resident memory line";
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_FALSE(process_exists(child));
}

TEST(ProcessMemory, MachineHasAvailableMemory) {
  const int64_t available = available_system_memory();
  EXPECT_GT(available, 0);
  EXPECT_EQ(available % 1024, 0);
}

}  // namespace
}  // namespace df::worker

// The headroom check as a worker makes it: the figures it reads from the roster and the device,
// freeing its own runner or asking an idle peer, and the insufficient_memory error it fails with.
#include <gtest/gtest.h>

#include "core/ids.h"
#include "store/sqlite_store.h"
#include "test_support.h"
#include "worker/headroom_guard.h"

namespace df::worker {
namespace {

constexpr int64_t kMb = int64_t{1} << 20;

gpu::RunnerState runner(const std::string& id, const std::string& state, int64_t used,
                        const std::string& device = "cuda:0") {
  gpu::RunnerState r;
  r.worker_id = id;
  r.device = device;
  r.state = state;
  r.pid = 100;
  r.memory_used_bytes = used;
  return r;
}

Job job_needing(int64_t memory_mb) {
  Job job;
  job.id = new_uuid_v7();
  job.type = "generate";
  job.spec = {{"checkpoint", "sdxl.safetensors"},
              {"memory_need", {{"preset", "sdxl-standard"}, {"memory_mb", memory_mb}, {"device_class", "gpu-24gb"}}}};
  return job;
}

TEST(HeadroomInput, ReadsTheNeedAndOurRunnersOnTheSameDeviceOnly) {
  auto self = runner("w0", "busy", 300 * kMb);
  self.models = {"sdxl.safetensors"};
  auto modelled = runner("w1", "idle", 900 * kMb);
  modelled.models_bytes = 700 * kMb;  // its own report wins over its whole memory
  const std::vector<gpu::RunnerState> runners = {self, modelled, runner("w2", "busy", 500 * kMb),
                                                 runner("w3", "idle", 800 * kMb, "cuda:1"),
                                                 runner("w4", "out_of_rotation", 0)};
  const auto input = headroom_input(job_needing(9000), self, runners, {1000 * kMb, 24000 * kMb});
  EXPECT_EQ(input.preset, "sdxl-standard");
  EXPECT_EQ(input.device, "cuda:0");
  EXPECT_EQ(input.need_bytes, 9000 * kMb);
  EXPECT_EQ(input.free_bytes, 1000 * kMb);
  EXPECT_EQ(input.total_bytes, 24000 * kMb);
  EXPECT_EQ(input.own_evictable_bytes, 300 * kMb);
  EXPECT_TRUE(input.own_model_warm);
  ASSERT_EQ(input.peers.size(), 2u);
  EXPECT_EQ(input.peers[0].worker_id, "w1");
  EXPECT_EQ(input.peers[0].evictable_bytes, 700 * kMb);
  EXPECT_FALSE(input.peers[0].busy);
  EXPECT_EQ(input.peers[1].worker_id, "w2");
  EXPECT_TRUE(input.peers[1].busy);
}

class HeadroomGuardTest : public ::testing::Test {
 protected:
  HeadroomGuard guard(int64_t wait_ms = 0) {
    return HeadroomGuard(
        pool_, {"w0", wait_ms, 1}, [this] {
          ++own_frees_;
          free_bytes_ += 2000 * kMb;
          roster_.update(runner("w0", "busy", 0));
        },
        [this](const std::string& device) -> std::optional<DeviceMemory> {
          devices_read_.push_back(device);
          return DeviceMemory{free_bytes_, 8000 * kMb};
        });
  }

  test::TestDir dir_{"df_headroom_guard_"};
  store::SqliteStore store_{(dir_.path() / "db.sqlite3").string()};
  gpu::RunnerRoster roster_;
  DevicePool pool_{roster_, store_};
  int own_frees_ = 0;
  int64_t free_bytes_ = 3000 * kMb;
  std::vector<std::string> devices_read_;
};

TEST_F(HeadroomGuardTest, AJobWithoutANeedIsNotChecked) {
  pool_.join(runner("w0", "busy", 0), [] {});
  Job job = job_needing(1);
  job.spec.erase("memory_need");
  EXPECT_EQ(guard().check(job), std::nullopt);
  EXPECT_TRUE(devices_read_.empty());
}

TEST_F(HeadroomGuardTest, ItsOwnRunnerFreesWhenThatMakesRoom) {
  pool_.join(runner("w0", "busy", 2500 * kMb), [] {});
  EXPECT_EQ(guard().check(job_needing(4000)), std::nullopt);
  EXPECT_EQ(own_frees_, 1);
  EXPECT_EQ(devices_read_.front(), "cuda:0");
}

TEST_F(HeadroomGuardTest, AnIdlePeerIsAskedToFree) {
  int peer_asked = 0;
  pool_.join(runner("w0", "busy", 0), [] {});
  pool_.join(runner("w1", "idle", 4000 * kMb), [&] {
    ++peer_asked;
    free_bytes_ += 4000 * kMb;
  });
  EXPECT_EQ(guard().check(job_needing(6000)), std::nullopt);
  EXPECT_EQ(peer_asked, 1);
  EXPECT_EQ(own_frees_, 0);
}

TEST_F(HeadroomGuardTest, ANeedThatCannotFitFailsWithTheNumbersAndFreesNothing) {
  pool_.join(runner("w0", "busy", 500 * kMb), [] {});
  const auto error = guard().check(job_needing(100000));
  ASSERT_TRUE(error);
  EXPECT_EQ((*error)["code"], "insufficient_memory");
  EXPECT_EQ((*error)["details"]["need_bytes"], 100000 * kMb);
  EXPECT_EQ((*error)["details"]["free_bytes"], 3000 * kMb);
  EXPECT_EQ((*error)["details"]["total_bytes"], 8000 * kMb);
  EXPECT_EQ((*error)["details"]["preset"], "sdxl-standard");
  EXPECT_EQ((*error)["details"]["device"], "cuda:0");
  EXPECT_NE((*error)["message"].get<std::string>().find("needs 97.7 GB"), std::string::npos)
      << (*error)["message"];
  EXPECT_EQ(own_frees_, 0);
}

TEST_F(HeadroomGuardTest, ABusyPeerIsWaitedForWithinTheBoundThenTheJobFails) {
  pool_.join(runner("w0", "busy", 0), [] {});
  pool_.join(runner("w1", "busy", 6000 * kMb), [] {});
  const auto error = guard(/*wait_ms=*/0).check(job_needing(6000));
  ASSERT_TRUE(error);
  EXPECT_EQ((*error)["code"], "insufficient_memory");
  EXPECT_EQ((*error)["details"]["held_by_our_runners_bytes"], 6000 * kMb);
}

}  // namespace
}  // namespace df::worker

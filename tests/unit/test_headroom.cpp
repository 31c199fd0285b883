// The headroom check before a job starts: run, free our runners first, wait for busy ones, or fail
// with the numbers (never a smaller preset).
#include <gtest/gtest.h>

#include "gpu/headroom.h"

namespace df::gpu {
namespace {

constexpr int64_t kGb = int64_t{1} << 30;

HeadroomInput on_gpu(int64_t need, int64_t free, int64_t own = 0) {
  HeadroomInput input;
  input.preset = "sdxl-standard";
  input.device = "cuda:1";
  input.need_bytes = need;
  input.free_bytes = free;
  input.total_bytes = 24 * kGb;
  input.own_evictable_bytes = own;
  return input;
}

TEST(Headroom, RunsWhenTheNeedFitsInWhatIsFree) {
  EXPECT_EQ(decide_headroom(on_gpu(9 * kGb, 9 * kGb)).action, HeadroomAction::kRun);
  EXPECT_EQ(decide_headroom(on_gpu(9 * kGb, 20 * kGb, 4 * kGb)).action, HeadroomAction::kRun);
}

TEST(Headroom, FreesItsOwnRunnerWhenThatIsEnough) {
  const auto decision = decide_headroom(on_gpu(9 * kGb, 6 * kGb, 4 * kGb));
  EXPECT_EQ(decision.action, HeadroomAction::kFree);
  EXPECT_TRUE(decision.free_own);
  EXPECT_TRUE(decision.peers_to_free.empty());
}

TEST(Headroom, ItsOwnWarmModelCountsAsAlreadyLoaded) {
  auto input = on_gpu(9 * kGb, 6 * kGb, 4 * kGb);
  input.own_model_warm = true;
  EXPECT_EQ(decide_headroom(input).action, HeadroomAction::kRun);
}

TEST(Headroom, AsksIdlePeersLargestFirstAndOnlyAsManyAsNeeded) {
  auto input = on_gpu(12 * kGb, 6 * kGb, 1 * kGb);
  input.peers = {{"w-small", false, 2 * kGb}, {"w-large", false, 5 * kGb}, {"w-busy", true, 8 * kGb}};
  const auto decision = decide_headroom(input);
  EXPECT_EQ(decision.action, HeadroomAction::kFree);
  EXPECT_TRUE(decision.free_own);
  EXPECT_EQ(decision.peers_to_free, std::vector<std::string>({"w-large"}));
}

TEST(Headroom, WaitsWhenOnlyBusyPeersHoldTheRest) {
  auto input = on_gpu(12 * kGb, 6 * kGb);
  input.peers = {{"w-idle", false, 1 * kGb}, {"w-busy", true, 8 * kGb}};
  EXPECT_EQ(decide_headroom(input).action, HeadroomAction::kWait);
}

TEST(Headroom, FailsWhenEvenEverythingOursIsTooLittle) {
  auto input = on_gpu(30 * kGb, 6 * kGb, 2 * kGb);
  input.peers = {{"w-idle", false, 3 * kGb}, {"w-busy", true, 8 * kGb}};
  EXPECT_EQ(decide_headroom(input).action, HeadroomAction::kFail);
}

TEST(Headroom, TheFailureCarriesTheNumbersInDetailsAndInWords) {
  auto input = on_gpu(30 * kGb, 6 * kGb, 2 * kGb);
  input.peers = {{"w-busy", true, 1 * kGb}};
  const auto details = headroom_details(input);
  EXPECT_EQ(details["preset"], "sdxl-standard");
  EXPECT_EQ(details["device"], "cuda:1");
  EXPECT_EQ(details["need_bytes"], 30 * kGb);
  EXPECT_EQ(details["free_bytes"], 6 * kGb);
  EXPECT_EQ(details["total_bytes"], 24 * kGb);
  EXPECT_EQ(details["held_by_our_runners_bytes"], 3 * kGb);
  EXPECT_EQ(insufficient_memory_message(input),
            "The preset 'sdxl-standard' needs 30 GB of memory but cuda:1 has 6 GB free of "
            "24 GB (Dream Forge's runners there hold 3 GB more); the job was not started. "
            "Free memory on the device, or choose a smaller preset.");
}

}  // namespace
}  // namespace df::gpu

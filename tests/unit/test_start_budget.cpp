// The start budget: start when the need fits, stop idle ones least recently used first, never busy
// ones, refuse with the numbers.
#include <gtest/gtest.h>

#include "gpu/start_budget.h"

namespace df::gpu {
namespace {

constexpr int64_t kGb = int64_t{1} << 30;

StartBudgetInput starting(int64_t need, int64_t free, std::vector<StartedOnDevice> started = {}) {
  StartBudgetInput input;
  input.starting = "backend:sdxl";
  input.device = "cuda:0";
  input.need_bytes = need;
  input.free_bytes = free;
  input.started = std::move(started);
  return input;
}

TEST(StartBudget, StartsWhenTheNeedFitsInWhatIsFree) {
  const auto decision = decide_start(starting(6 * kGb, 6 * kGb, {{"native", 4 * kGb, 1, false}}));
  EXPECT_EQ(decision.action, StartAction::kStart);
  EXPECT_TRUE(decision.stop.empty());
}

TEST(StartBudget, StopsTheLeastRecentlyUsedIdleOnesOnlyAsFarAsNeeded) {
  const auto decision = decide_start(starting(8 * kGb, 3 * kGb,
                                              {{"backend:recent", 4 * kGb, 300, false},
                                               {"backend:oldest", 2 * kGb, 100, false},
                                               {"native", 4 * kGb, 200, false}}));
  EXPECT_EQ(decision.action, StartAction::kStopThenStart);
  EXPECT_EQ(decision.stop, (std::vector<std::string>{"backend:oldest", "native"}));
}

TEST(StartBudget, EqualLastUseStopsInIdOrder) {
  const auto decision = decide_start(
      starting(5 * kGb, 3 * kGb, {{"backend:b", 2 * kGb, 7, false}, {"backend:a", 2 * kGb, 7, false}}));
  EXPECT_EQ(decision.stop, (std::vector<std::string>{"backend:a"}));
}

TEST(StartBudget, NeverStopsABusyOne) {
  const auto decision = decide_start(starting(8 * kGb, 3 * kGb,
                                              {{"native", 10 * kGb, 1, true},
                                               {"backend:idle", 6 * kGb, 5, false}}));
  EXPECT_EQ(decision.action, StartAction::kStopThenStart);
  EXPECT_EQ(decision.stop, (std::vector<std::string>{"backend:idle"}));
}

TEST(StartBudget, RefusesWhenEvenEveryIdleOneStoppedIsTooLittle) {
  const auto input = starting(12 * kGb, 3 * kGb,
                              {{"native", 10 * kGb, 1, true}, {"backend:idle", 2 * kGb, 5, false}});
  const auto decision = decide_start(input);
  EXPECT_EQ(decision.action, StartAction::kRefuse);
  EXPECT_TRUE(decision.stop.empty());
  const auto details = start_budget_details(input);
  EXPECT_EQ(details["need_bytes"], 12 * kGb);
  EXPECT_EQ(details["free_bytes"], 3 * kGb);
  EXPECT_EQ(details["freeable_bytes"], 2 * kGb);
  EXPECT_EQ(details["busy_bytes"], 10 * kGb);
  EXPECT_EQ(details["device"], "cuda:0");
  EXPECT_EQ(details["starting"], "backend:sdxl");
}

TEST(StartBudget, IdleOnesHoldingNothingAreNotStopped) {
  const auto decision = decide_start(starting(4 * kGb, 3 * kGb, {{"backend:empty", 0, 1, false}}));
  EXPECT_EQ(decision.action, StartAction::kRefuse);
}

TEST(StartBudget, TheRefusalSaysTheNumbersInWords) {
  const auto input = starting(12 * kGb, 3 * kGb,
                              {{"native", 10 * kGb, 1, true}, {"backend:idle", 2 * kGb, 5, false}});
  EXPECT_EQ(start_refused_message(input),
            "backend:sdxl needs 12 GB of GPU memory to start but cuda:0 has 3 GB free, and stopping "
            "the idle runners Dream Forge started there would free 2 GB more (busy ones hold 10 GB); "
            "it was not started. Free memory on the device, or lower its memory_need.");
  EXPECT_EQ(start_refused_message(starting(12 * kGb, 3 * kGb)),
            "backend:sdxl needs 12 GB of GPU memory to start but cuda:0 has 3 GB free; it was not "
            "started. Free memory on the device, or lower its memory_need.");
}

}  // namespace
}  // namespace df::gpu

// The process's GPU memory budget: a start fits, or idle members (native runners and backend
// servers alike) are stopped least recently used first, only as many as needed, never a busy one,
// or it is refused with the numbers; members on other devices do not count.
#include <gtest/gtest.h>

#include <vector>

#include "test_support.h"
#include "worker/device_budget.h"

namespace df::worker {
namespace {

constexpr int64_t kGb = int64_t{1} << 30;

class DeviceBudgetTest : public ::testing::Test {
 protected:
  DeviceBudget budget{[this](int index) {
                        ++reads;
                        return std::optional<int64_t>(index == 0 ? free : 0);
                      },
                      [](int, pid_t) { return int64_t{0}; }};

  // A running member on `device` that holds `need` and gives it back when stopped.
  void add(const std::string& id, const std::string& device, int64_t need, int64_t last_used,
           bool busy = false, bool stops = true) {
    budget.join({id, device, need, 4242, busy, last_used, [this, id, device, need, stops] {
                   if (!stops) return false;
                   stopped.push_back(id);
                   if (device == "cuda:0") free += need;
                   budget.update(id, device, 0, false, 0);
                   return true;
                 }});
  }

  int64_t free = 0;
  int reads = 0;
  std::vector<std::string> stopped;
};

TEST_F(DeviceBudgetTest, StartsWhenTheNeedFits) {
  free = 6 * kGb;
  add("native:w1", "cuda:0", 4 * kGb, 100);
  budget.make_room("backend:a", "cuda:0", 5 * kGb);
  EXPECT_TRUE(stopped.empty());
}

TEST_F(DeviceBudgetTest, StopsTheLeastRecentlyUsedIdleOnesOfEitherKindOnlyAsManyAsNeeded) {
  free = 1 * kGb;
  add("backend:a", "cuda:0", 3 * kGb, 300);
  add("native:w1", "cuda:0", 3 * kGb, 100);
  add("native:w2", "cuda:0", 3 * kGb, 200);
  budget.make_room("native:w3", "cuda:0", 6 * kGb);
  EXPECT_EQ(stopped, (std::vector<std::string>{"native:w1", "native:w2"}));
}

TEST_F(DeviceBudgetTest, NeverStopsABusyOneAndRefusesWithTheNumbers) {
  free = 1 * kGb;
  add("native:w1", "cuda:0", 3 * kGb, 100, /*busy=*/true);
  add("backend:a", "cuda:0", 2 * kGb, 200);
  const Error error = test::error_of([&] { budget.make_room("native:w2", "cuda:0", 5 * kGb); });
  EXPECT_EQ(error.code(), ErrorCode::kInsufficientMemory);
  EXPECT_EQ(error.details()["need_bytes"], 5 * kGb);
  EXPECT_EQ(error.details()["free_bytes"], 1 * kGb);
  EXPECT_EQ(error.details()["freeable_bytes"], 2 * kGb);
  EXPECT_EQ(error.details()["busy_bytes"], 3 * kGb);
  EXPECT_NE(std::string(error.what()).find("native:w2 needs 5 GB"), std::string::npos)
      << error.what();
  EXPECT_TRUE(stopped.empty());
}

TEST_F(DeviceBudgetTest, MembersOnOtherDevicesAndStoppedOnesDoNotCount) {
  free = 1 * kGb;
  add("native:w1", "cuda:1", 8 * kGb, 100);
  add("backend:a", "cuda:0", 8 * kGb, 100);
  budget.update("backend:a", "cuda:0", 0, false, 100);  // not running: holds nothing
  EXPECT_EQ(test::error_code_of([&] { budget.make_room("native:w2", "cuda:0", 4 * kGb); }),
            ErrorCode::kInsufficientMemory);
  EXPECT_TRUE(stopped.empty());
}

TEST_F(DeviceBudgetTest, OneThatDoesNotStopCountsAsBusyAndTheDecisionIsMadeAgain) {
  free = 1 * kGb;
  add("native:w1", "cuda:0", 3 * kGb, 100, false, /*stops=*/false);
  add("backend:a", "cuda:0", 3 * kGb, 200);
  budget.make_room("native:w2", "cuda:0", 4 * kGb);
  EXPECT_EQ(stopped, (std::vector<std::string>{"backend:a"}));

  add("native:w3", "cuda:0", 3 * kGb, 50, false, /*stops=*/false);
  const Error error = test::error_of([&] { budget.make_room("native:w4", "cuda:0", 8 * kGb); });
  EXPECT_EQ(error.code(), ErrorCode::kInsufficientMemory);
  EXPECT_EQ(error.details()["busy_bytes"], 6 * kGb);
}

TEST_F(DeviceBudgetTest, NoBudgetOnTheCpuOrWithoutADeclaredNeed) {
  add("native:w1", "cuda:0", 3 * kGb, 100);
  budget.make_room("native:w2", "cpu", 100 * kGb);
  budget.make_room("native:w2", "cuda:0", 0);
  EXPECT_EQ(reads, 0);
  EXPECT_TRUE(stopped.empty());
}

}  // namespace
}  // namespace df::worker

// The lifecycle of what Dream Forge starts: a runner idle for its idle time is stopped (never one
// running a job), and backend servers start on demand within their device's memory budget, stay
// while a job uses them, are stopped once idle, and start again after a crash.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "backend_standin.h"
#include "core/ids.h"
#include "store/sqlite_store.h"
#include "test_support.h"
#include "worker/runner_lifecycle.h"

namespace df::worker {
namespace {

constexpr int64_t kGb = int64_t{1} << 30;

TEST(RunnerIdleStop, StopsARunningRunnerOnceIdleForTheIdleTime) {
  int64_t now = 1000;
  RunnerIdleStop idle(300000, [&] { return now; });
  now += 299999;
  EXPECT_FALSE(idle.stop_due(false, true));
  now += 1;
  EXPECT_TRUE(idle.stop_due(false, true));
  EXPECT_FALSE(idle.stop_due(false, false));  // already stopped: nothing to do
}

TEST(RunnerIdleStop, AJobStartsTheIdleTimeAgain) {
  int64_t now = 0;
  RunnerIdleStop idle(1000, [&] { return now; });
  now = 900;
  EXPECT_FALSE(idle.stop_due(true, true));
  now = 1800;
  EXPECT_FALSE(idle.stop_due(false, true));
  now = 1900;
  EXPECT_TRUE(idle.stop_due(false, true));
}

TEST(RunnerIdleStop, ZeroNeverStops) {
  int64_t now = 0;
  RunnerIdleStop idle(0, [&] { return now; });
  now = int64_t{1} << 40;
  EXPECT_FALSE(idle.stop_due(false, true));
}

class StartedBackendsTest : public ::testing::Test {
 protected:
  backends::BackendSpec on_gpu(const std::string& name, int64_t need) {
    auto spec = test::standin_backend(dir.path(), name, "ready");
    spec.device = "cuda:0";
    spec.memory_need_bytes = need;
    spec.idle_timeout_ms = 60000;
    return spec;
  }
  StartedBackends backends_with_free(const int64_t* free) {
    return StartedBackends(
        (dir.path() / "data").string(),
        std::make_shared<DeviceBudget>([free](int) { return std::optional<int64_t>(*free); },
                                       [](int, pid_t) { return int64_t{0}; }),
        [this] { return now; }, 2000);
  }

  test::TestDir dir{"df_runner_lifecycle_"};
  int64_t now = 0;
};

TEST_F(StartedBackendsTest, StartsOnDemandOnTheCpuWithoutABudget) {
  StartedBackends backends((dir.path() / "data").string(),
                           std::make_shared<DeviceBudget>(
                               [](int) -> std::optional<int64_t> {
                                 ADD_FAILURE() << "no GPU budget on the CPU";
                                 return 0;
                               },
                               [](int, pid_t) { return int64_t{0}; }),
                           [this] { return now; }, 2000);
  auto spec = test::standin_backend(dir.path(), "cpu-one", "ready");
  spec.memory_need_bytes = 100 * kGb;
  EXPECT_EQ(backends.pid("cpu-one"), 0);
  { auto use = backends.ensure_started(spec); }
  EXPECT_NE(backends.pid("cpu-one"), 0);
}

TEST_F(StartedBackendsTest, RefusesWithTheNumbersWhenTheNeedDoesNotFit) {
  const int64_t free = 3 * kGb;
  auto backends = backends_with_free(&free);
  const Error error = test::error_of([&] { backends.ensure_started(on_gpu("big", 8 * kGb)); });
  EXPECT_EQ(error.code(), ErrorCode::kInsufficientMemory);
  EXPECT_EQ(error.details()["need_bytes"], 8 * kGb);
  EXPECT_EQ(error.details()["free_bytes"], 3 * kGb);
  EXPECT_NE(std::string(error.what()).find("backend:big needs 8 GB"), std::string::npos) << error.what();
  EXPECT_EQ(backends.pid("big"), 0);
}

TEST_F(StartedBackendsTest, StopsTheLeastRecentlyUsedIdleServerToMakeRoom) {
  int64_t free = 10 * kGb;
  auto backends = backends_with_free(&free);
  now = 100;
  { auto use = backends.ensure_started(on_gpu("older", 4 * kGb)); }
  now = 200;
  { auto use = backends.ensure_started(on_gpu("newer", 4 * kGb)); }
  free = 2 * kGb;  // both servers hold their memory now
  now = 300;
  auto use = backends.ensure_started(on_gpu("third", 5 * kGb));
  EXPECT_EQ(backends.pid("older"), 0);
  EXPECT_NE(backends.pid("newer"), 0);
  EXPECT_NE(backends.pid("third"), 0);
}

TEST_F(StartedBackendsTest, NeverStopsAServerAJobUses) {
  int64_t free = 10 * kGb;
  auto backends = backends_with_free(&free);
  auto busy = backends.ensure_started(on_gpu("busy", 6 * kGb));
  free = 4 * kGb;
  const Error error = test::error_of([&] { backends.ensure_started(on_gpu("other", 6 * kGb)); });
  EXPECT_EQ(error.code(), ErrorCode::kInsufficientMemory);
  EXPECT_EQ(error.details()["busy_bytes"], 6 * kGb);
  EXPECT_NE(backends.pid("busy"), 0);
}

TEST_F(StartedBackendsTest, StopsAServerIdleForItsIdleTimeoutOnlyOnceNoJobUsesIt) {
  int64_t free = 10 * kGb;
  auto backends = backends_with_free(&free);
  const auto spec = on_gpu("idle", 1 * kGb);
  {
    auto use = backends.ensure_started(spec);
    now += 120000;
    EXPECT_TRUE(backends.stop_idle().empty());  // a job runs on it: it drains first
  }
  now += 59999;
  EXPECT_TRUE(backends.stop_idle().empty());
  now += 1;
  EXPECT_EQ(backends.stop_idle(), std::vector<std::string>{"idle"});
  EXPECT_EQ(backends.pid("idle"), 0);
  { auto use = backends.ensure_started(spec); }  // the next job starts it again
  EXPECT_NE(backends.pid("idle"), 0);
}

TEST_F(StartedBackendsTest, StartsACrashedServerAgainForTheNextJob) {
  int64_t free = 10 * kGb;
  auto backends = backends_with_free(&free);
  const auto spec = on_gpu("crashy", 1 * kGb);
  { auto use = backends.ensure_started(spec); }
  const pid_t first = backends.pid("crashy");
  ASSERT_NE(first, 0);
  ::kill(first, SIGKILL);
  while (backends.pid("crashy") != 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  { auto use = backends.ensure_started(spec); }
  EXPECT_NE(backends.pid("crashy"), 0);
  EXPECT_NE(backends.pid("crashy"), first);
}

TEST_F(StartedBackendsTest, AJobsStartFailsItWithTheNumbers) {
  const int64_t free = 1 * kGb;
  auto backends = backends_with_free(&free);
  const auto refusal = backends.start_for_job(on_gpu("big", 2 * kGb));
  ASSERT_TRUE(refusal.has_value());
  EXPECT_EQ((*refusal)["code"], "insufficient_memory");
  EXPECT_EQ((*refusal)["details"]["need_bytes"], 2 * kGb);
  EXPECT_NE((*refusal)["message"].get<std::string>().find("backend:big needs 2 GB"), std::string::npos);
  EXPECT_FALSE(backends.start_for_job(on_gpu("small", kGb / 2)).has_value());
  EXPECT_NE(backends.pid("small"), 0);
}

TEST_F(StartedBackendsTest, AServerAJobRunsOnIsNotStoppedIdle) {
  const int64_t free = 10 * kGb;
  auto backends = backends_with_free(&free);
  ASSERT_FALSE(backends.start_for_job(on_gpu("used", kGb)).has_value());
  bool job_runs = true;
  const auto in_use = [&](const std::string& runner_id) { return job_runs && runner_id == "backend:used"; };
  now += 600000;
  EXPECT_TRUE(backends.stop_idle(in_use).empty());
  job_runs = false;
  now += 59999;
  EXPECT_TRUE(backends.stop_idle(in_use).empty());  // its idle time started when last seen in use
  now += 1;
  EXPECT_EQ(backends.stop_idle(in_use), std::vector<std::string>{"used"});
}

TEST_F(StartedBackendsTest, TheWatcherStopsIdleServers) {
  const int64_t free = 10 * kGb;
  auto backends = backends_with_free(&free);
  ASSERT_FALSE(backends.start_for_job(on_gpu("watched", kGb)).has_value());
  now += 60000;
  backends.watch_idle([](const std::string&) { return false; }, 10);
  while (backends.pid("watched") != 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

TEST(LeaseKeeper, RenewsTheJobsLeaseAtMostEveryHeartbeat) {
  test::TestDir dir("df_lease_keeper_");
  store::SqliteStore store((dir.path() / "jobs.sqlite3").string());
  Job job;
  job.id = new_uuid_v7();
  job.type = "workflow";
  job.spec = {{"graph", nlohmann::json::object()}};
  job.max_attempts = 3;
  store.create_job(job);
  const auto claimed = store.claim_job("backend-worker", 1000);
  ASSERT_TRUE(claimed.has_value());
  const int64_t first_expiry = store.get_job(job.id)->lease_expires_ms;

  int64_t now = 0;
  auto keep = lease_keeper(store, *claimed, 3600000, 500, [&] { return now; });
  now = 499;
  keep();
  EXPECT_EQ(store.get_job(job.id)->lease_expires_ms, first_expiry);
  now = 500;
  keep();
  EXPECT_GT(store.get_job(job.id)->lease_expires_ms, first_expiry + 3000000);
}

}  // namespace
}  // namespace df::worker

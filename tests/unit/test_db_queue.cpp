// The database queue: claims come straight from the store, and a wait ends as soon as a job is
// enqueued or the queue is woken in this process.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "core/ids.h"
#include "queue/db_queue.h"
#include "store/sqlite_store.h"
#include "test_support.h"

namespace df::queue {
namespace {

constexpr int64_t kLease = 60000;
constexpr int64_t kLongWait = 60000;  // a wait that only an enqueue or wake() ends in time

Job make_job(const std::string& id, int priority = 0) {
  Job job;
  job.id = id;
  job.type = "generate";
  job.spec = {{"prompt", "a lighthouse"}};
  job.priority = priority;
  job.max_attempts = 3;
  job.created_ms = now_ms();
  return job;
}

class DbQueueTest : public ::testing::Test {
 protected:
  test::TestDir dir_{"df_db_queue_"};
  store::SqliteStore store_{(dir_.path() / "jobs.sqlite3").string()};
  DbQueue queue_{store_};
};

TEST_F(DbQueueTest, ClaimTakesTheStoresNextJobUnderALease) {
  store_.create_job(make_job("job-1"));
  store_.create_job(make_job("job-2", 3));
  const auto delivery = queue_.claim("worker-a", kLease, 0);
  ASSERT_TRUE(delivery);
  EXPECT_EQ(delivery->job.id, "job-2") << "priority first";
  EXPECT_EQ(delivery->job.status, JobStatus::kRunning);
  EXPECT_EQ(store_.get_job("job-2")->worker_id, "worker-a");
  EXPECT_EQ(queue_.claim("worker-b", kLease, 0)->job.id, "job-1");
  EXPECT_FALSE(queue_.claim("worker-c", kLease, 0));
}

TEST_F(DbQueueTest, EnqueueEndsAWaitingClaim) {
  auto waiting = std::async(std::launch::async, [this] { return queue_.claim("w", kLease, kLongWait); });
  // Whether or not the claim waits yet, it must end with the job: found in the store at once, or
  // woken by the enqueue.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const Job job = make_job("job-1");
  store_.create_job(job);
  queue_.enqueue(job);
  ASSERT_EQ(waiting.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  const auto delivery = waiting.get();
  ASSERT_TRUE(delivery);
  EXPECT_EQ(delivery->job.id, "job-1");
}

TEST_F(DbQueueTest, WakeEndsEveryWaitingClaimEmptyHanded) {
  auto first = std::async(std::launch::async, [this] { return queue_.claim("w1", kLease, kLongWait); });
  auto second = std::async(std::launch::async, [this] { return queue_.claim("w2", kLease, kLongWait); });
  // A wake before a claim has begun to wait does not end that claim's wait, and a loaded machine
  // may start the claims late: wake until both have ended, well before their own wait would.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < give_up &&
         (first.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready ||
          second.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready)) {
    queue_.wake();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(first.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  ASSERT_EQ(second.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_FALSE(first.get());
  EXPECT_FALSE(second.get());
}

TEST_F(DbQueueTest, TheStoreIsTheQueueSoNothingIsEverLost) {
  store_.create_job(make_job("job-1"));
  EXPECT_EQ(queue_.reconcile(), 0);
  EXPECT_EQ(queue_.kind(), "db");
  EXPECT_NO_THROW(queue_.ping());
  EXPECT_EQ(queue_.claim("w", kLease, 0)->job.id, "job-1") << "found without an enqueue";
}

}  // namespace
}  // namespace df::queue

// A worker asked to stop its runner to make room on its device: an idle one is stopped on the
// worker's own thread, between jobs; one that takes a job meanwhile is not stopped.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <thread>

#include "blob/local_blob_store.h"
#include "core/ids.h"
#include "runner/protocol.h"
#include "store/sqlite_store.h"
#include "telemetry/metrics.h"
#include "telemetry/service_log.h"
#include "telemetry/service_metrics.h"
#include "scripted_runner.h"
#include "test_support.h"
#include "worker/device_pool.h"
#include "worker/worker.h"

namespace df::worker {
namespace {

// A queue that has no job until it is woken; then it delivers `job` once (when there is one).
class WakeQueue final : public queue::Queue {
 public:
  explicit WakeQueue(std::optional<Job> job) : job_(std::move(job)) {}

  std::optional<queue::Delivery> claim(const std::string&, int64_t, int64_t wait_ms) override {
    std::unique_lock lock(mutex_);
    claiming_ = true;
    changed_.notify_all();
    changed_.wait_for(lock, std::chrono::milliseconds(wait_ms), [this] { return woken_; });
    if (!woken_ || !job_) return std::nullopt;
    queue::Delivery delivery{*job_, ""};
    job_.reset();
    return delivery;
  }
  void wake() override {
    std::lock_guard lock(mutex_);
    woken_ = true;
    changed_.notify_all();
  }
  // Until the worker waits for a job.
  void wait_until_claiming() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return claiming_; });
  }
  void enqueue(const Job&) override {}
  void touch(const queue::Delivery&) override {}
  void settle(const queue::Delivery&, const queue::SettleInfo&) override {}
  int reconcile() override { return 0; }
  void ping() override {}
  std::string kind() const override { return "wake"; }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool claiming_ = false;
  bool woken_ = false;
  std::optional<Job> job_;
};

class WorkerRoomRequestTest : public ::testing::Test {
 protected:
  WorkerRoomRequestTest() {
    const std::string script = test::write_scripted_runner(dir_.path(), "native");
    runner_ = std::make_unique<RunnerSupervisor>(RunnerSettings{{script}});
    settings_.worker_id = "worker-under-test";
    settings_.poll_ms = 60000;  // the worker waits on the queue until it is woken
    settings_.memory_release_wait_ms = 0;
    telemetry::declare_service_metrics(metrics_);
  }

  // Runs a worker with a started runner on `queue`; asks it for room once it waits for a job.
  bool ask_for_room(WakeQueue& queue) {
    runner_->ensure_started();
    WorkerContext context{store_, queue, blobs_, *runner_, metrics_, settings_, nullptr, nullptr,
                          std::stop_token(), nullptr};
    gpu::RunnerRoster roster;
    DevicePool pool(roster, store_);
    Worker worker(context, pool, WorkerDevice{"cpu", false}, budget_);
    std::jthread thread([&worker](std::stop_token stop) { worker.run(stop); });
    queue.wait_until_claiming();
    const bool stopped = worker.stop_for_room();
    thread.request_stop();
    queue.wake();
    thread.join();
    return stopped;
  }

  int room_stops() {
    std::lock_guard lock(log_mutex_);
    int count = 0;
    for (const auto& line : log_) count += line.find("stopped to make room") != std::string::npos;
    return count;
  }

  test::TestDir dir_{"df_worker_room_"};
  store::SqliteStore store_{(dir_.path() / "jobs.sqlite3").string()};
  blob::LocalBlobStore blobs_{(dir_.path() / "blobs").string(),
                              blob::UrlSigner("worker-room-test-signing-key")};
  telemetry::Metrics metrics_;
  WorkerSettings settings_;
  std::unique_ptr<RunnerSupervisor> runner_;
  std::shared_ptr<DeviceBudget> budget_ = std::make_shared<DeviceBudget>();
  std::mutex log_mutex_;
  std::vector<std::string> log_;
  uint64_t token_ = telemetry::service_log().listen([this](const telemetry::LogEntry& entry) {
    std::lock_guard lock(log_mutex_);
    log_.push_back(entry.message);
  });
  ~WorkerRoomRequestTest() override { telemetry::service_log().unlisten(token_); }
};

TEST_F(WorkerRoomRequestTest, AnIdleWorkersRunnerIsStoppedOnItsOwnThread) {
  WakeQueue queue(std::nullopt);
  EXPECT_TRUE(ask_for_room(queue));
  EXPECT_EQ(room_stops(), 1);
}

TEST_F(WorkerRoomRequestTest, AWorkerThatTakesAJobMeanwhileIsNotStopped) {
  Job job;
  job.id = new_uuid_v7();
  job.type = "workflow";
  job.spec = {{"workflow", nlohmann::json::object()}};
  job.max_attempts = 1;
  job.cancel_requested = true;  // ends at once when it runs: it needs no runner
  store_.create_job(job);
  WakeQueue queue(job);
  EXPECT_FALSE(ask_for_room(queue));
  EXPECT_EQ(room_stops(), 0);
}

}  // namespace
}  // namespace df::worker

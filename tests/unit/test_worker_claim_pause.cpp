// The worker's claim loop while a backend is down (the database, the queue, or the ComfyUI server
// a backend worker drives): claiming pauses and is retried, the error is logged once (not once per
// retry), and the recovery is logged when claims work again.
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <stop_token>
#include <string>
#include <vector>

#include "blob/local_blob_store.h"
#include "core/error.h"
#include "store/sqlite_store.h"
#include "telemetry/metrics.h"
#include "telemetry/service_log.h"
#include "test_support.h"
#include "worker/device_pool.h"
#include "worker/worker.h"

namespace df::worker {
namespace {

// A queue whose claims fail with `errors` in turn (an empty one: no job), then stops the worker.
class ScriptedQueue final : public queue::Queue {
 public:
  ScriptedQueue(std::vector<std::string> errors, std::stop_source& stop)
      : errors_(std::move(errors)), stop_(stop) {}

  std::optional<queue::Delivery> claim(const std::string&, int64_t, int64_t) override {
    if (claims_ == errors_.size()) stop_.request_stop();
    const std::string error = claims_ < errors_.size() ? errors_[claims_] : "";
    ++claims_;
    if (!error.empty()) throw Error(ErrorCode::kUnavailable, error);
    return std::nullopt;
  }
  void enqueue(const Job&) override {}
  void wake() override {}
  void touch(const queue::Delivery&) override {}
  void settle(const queue::Delivery&, const queue::SettleInfo&) override {}
  int reconcile() override { return 0; }
  void ping() override {}
  std::string kind() const override { return "scripted"; }

 private:
  std::vector<std::string> errors_;
  std::stop_source& stop_;
  size_t claims_ = 0;
};

// A ComfyUI server that does not answer the first `down_checks` times it is asked.
class RecoveringBackend final : public BackendHealth {
 public:
  explicit RecoveringBackend(int down_checks) : down_checks_(down_checks) {}
  bool up(const std::string&) const override { return ++checks_ > down_checks_; }
  int queue_remaining(const std::string&) const override { return 0; }
  void mark_down(const std::string&, const std::string&) override {}

 private:
  const int down_checks_;
  mutable int checks_ = 0;
};

// The lines the service log gets while it lives.
class LogCapture {
 public:
  LogCapture()
      : token_(telemetry::service_log().listen([this](const telemetry::LogEntry& entry) {
          std::lock_guard lock(mutex_);
          lines_.push_back(entry.message);
        })) {}
  ~LogCapture() { telemetry::service_log().unlisten(token_); }

  int count(const std::string& text) {
    std::lock_guard lock(mutex_);
    return static_cast<int>(std::count_if(lines_.begin(), lines_.end(), [&](const std::string& line) {
      return line.find(text) != std::string::npos;
    }));
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> lines_;
  uint64_t token_;
};

class WorkerClaimPauseTest : public ::testing::Test {
 protected:
  // Runs the worker until the scripted claims are used up.
  void run_worker(std::vector<std::string> claim_errors) {
    std::stop_source stop;
    ScriptedQueue queue(std::move(claim_errors), stop);
    WorkerSettings settings;
    settings.worker_id = "worker-under-test";
    settings.poll_ms = 1;
    WorkerContext context{store_, queue, blobs_, runner_, metrics_, settings, nullptr, nullptr,
                          std::stop_token(), nullptr};
    Worker(context).run(stop.get_token());
  }

  test::TestDir dir_{"df_worker_pause_"};
  store::SqliteStore store_{(dir_.path() / "jobs.sqlite3").string()};
  blob::LocalBlobStore blobs_{(dir_.path() / "blobs").string(), blob::UrlSigner("worker-pause-test-signing-key")};
  RunnerSupervisor runner_{RunnerSettings{{"/bin/false"}}};
  telemetry::Metrics metrics_;
};

TEST_F(WorkerClaimPauseTest, AnOutageIsLoggedOnceAndTheRecoveryOnce) {
  LogCapture log;
  run_worker({"redis at 127.0.0.1:1 unreachable", "redis at 127.0.0.1:1 unreachable",
              "redis at 127.0.0.1:1 unreachable", ""});
  EXPECT_EQ(log.count("worker-under-test: claiming paused"), 1);
  EXPECT_EQ(log.count("redis at 127.0.0.1:1 unreachable"), 1);
  EXPECT_EQ(log.count("worker-under-test: claiming again"), 1);
}

TEST_F(WorkerClaimPauseTest, ADifferentErrorIsLoggedAgain) {
  LogCapture log;
  run_worker({"redis unreachable", "database unreachable", "database unreachable", ""});
  EXPECT_EQ(log.count("claiming paused"), 2);
  EXPECT_EQ(log.count("claiming again"), 1);
}

TEST_F(WorkerClaimPauseTest, ABackendWorkerClaimsNothingWhileItsServerIsDownAndSaysSoOnce) {
  LogCapture log;
  std::stop_source stop;
  ScriptedQueue queue({"", ""}, stop);
  WorkerSettings settings;
  settings.worker_id = "worker-under-test";
  settings.poll_ms = 1;
  gpu::RunnerRoster roster;
  RecoveringBackend backend(3);
  DevicePool pool(roster, store_, &backend);
  WorkerContext context{store_, queue, blobs_, runner_, metrics_, settings, nullptr, nullptr,
                        std::stop_token(), nullptr};
  Worker(context, pool, WorkerDevice{"backend", false, "backend:studio"}).run(stop.get_token());
  EXPECT_EQ(log.count("worker-under-test: claiming paused"), 1);
  EXPECT_EQ(log.count("its backend backend:studio does not answer"), 1);
  EXPECT_EQ(log.count("worker-under-test: claiming again"), 1);
  EXPECT_EQ(roster.find("worker-under-test")->runner_id, "backend:studio");
  EXPECT_EQ(roster.find("worker-under-test")->device, "backend");
}

TEST_F(WorkerClaimPauseTest, ClaimsThatWorkLogNothing) {
  LogCapture log;
  run_worker({"", ""});
  EXPECT_EQ(log.count("worker-under-test"), 0);
}

}  // namespace
}  // namespace df::worker

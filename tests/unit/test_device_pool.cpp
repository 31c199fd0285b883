// Several devices in one service: the --devices list, pinning a runner, the hello and crash checks
// that take a device out of rotation, jobs handed to the worker chosen for them or held back until
// one can take them, and the backends' health.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>

#include "core/error.h"
#include "core/ids.h"
#include "queue/queue.h"
#include "store/sqlite_store.h"
#include "telemetry/service_log.h"
#include "test_support.h"
#include "worker/device_pool.h"

namespace df::worker {
namespace {

gpu::RunnerState runner(const std::string& id, const std::string& state,
                        std::vector<std::string> models, const std::string& device = "cuda:0") {
  gpu::RunnerState r;
  r.worker_id = id;
  r.device = device;
  r.state = state;
  r.pid = 100;
  r.models = std::move(models);
  return r;
}

Job generate_job(const std::string& checkpoint) {
  Job job;
  job.id = new_uuid_v7();
  job.type = "generate";
  job.spec = {{"prompt", "a red kite"}, {"checkpoint", checkpoint}};
  job.max_attempts = 3;
  job.created_ms = now_ms();
  return job;
}

TEST(DeviceList, IndicesBecomeCudaDevicesAndCpuStaysCpu) {
  EXPECT_EQ(parse_device_list({"0", "1"}), std::vector<std::string>({"cuda:0", "cuda:1"}));
  EXPECT_EQ(parse_device_list({"cpu", "cpu"}), std::vector<std::string>({"cpu", "cpu"}));
  EXPECT_TRUE(parse_device_list({}).empty());
}

TEST(DeviceList, AnythingElseOrAGpuTwiceIsRefusedNamingTheSetting) {
  for (const auto& bad : {std::vector<std::string>{"gpu0"}, {"-1"}, {""},
                                             {"1", "01"}}) {
    try {
      parse_device_list(bad);
      ADD_FAILURE() << "accepted " << bad.back();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("DREAMFORGE_DEVICES"), std::string::npos) << e.what();
    }
  }
}

TEST(DeviceList, APinnedRunnerSeesOnlyItsGpuInNvmlOrder) {
  EXPECT_EQ(runner_device_flag("cuda:3"), "cuda");
  EXPECT_EQ(runner_device_flag("cpu"), "cpu");
  EXPECT_EQ(runner_device_environment("cuda:3"),
            std::vector<std::string>({"CUDA_VISIBLE_DEVICES=3", "CUDA_DEVICE_ORDER=PCI_BUS_ID"}));
  EXPECT_EQ(runner_device_environment("cpu"), std::vector<std::string>({"CUDA_VISIBLE_DEVICES="}));
}

TEST(Rotation, TheHelloMustShowThePinnedDevice) {
  EXPECT_EQ(hello_mismatch("cuda:1", "cuda", {"cpu", "cuda"}), "");
  EXPECT_EQ(hello_mismatch("cpu", "cpu", {"cpu"}), "");
  EXPECT_EQ(hello_mismatch("cuda:1", "cuda", {"cpu"}), "its runner sees no cuda device");
  EXPECT_EQ(hello_mismatch("cuda:1", "cpu", {"cpu", "cuda"}),
            "its runner said hello on cpu, not cuda");
}

TEST(Rotation, OnlyCrashesInARowCount) {
  CrashStreak streak;
  EXPECT_FALSE(streak.record(true));
  EXPECT_FALSE(streak.record(true));
  EXPECT_FALSE(streak.record(false)) << "a job that ended well starts the count again";
  EXPECT_FALSE(streak.record(true));
  EXPECT_FALSE(streak.record(true));
  EXPECT_TRUE(streak.record(true));
}

TEST(Placement, AJobLoadsItsCheckpointOrItsWorkflowsCheckpoints) {
  EXPECT_EQ(job_checkpoints(generate_job("sdxl.safetensors")),
            std::vector<std::string>({"sdxl.safetensors"}));
  Job workflow;
  workflow.type = "workflow";
  workflow.spec = {{"workflow",
                    {{"4", {{"class_type", "CheckpointLoaderSimple"}, {"inputs", {{"ckpt_name", "a.ckpt"}}}}},
                     {"5", {{"class_type", "EmptyLatentImage"}, {"inputs", {{"width", 64}}}}}}}};
  EXPECT_EQ(job_checkpoints(workflow), std::vector<std::string>({"a.ckpt"}));
}

// Backends by runner id: up or down, their queues, and what marked them down.
class FakeBackendHealth final : public BackendHealth {
 public:
  bool up(const std::string& runner_id) const override { return !down_.contains(runner_id); }
  int queue_remaining(const std::string& runner_id) const override {
    const auto it = queues_.find(runner_id);
    return it == queues_.end() ? 0 : it->second;
  }
  void mark_down(const std::string& runner_id, const std::string& reason) override {
    down_[runner_id] = reason;
  }

  std::map<std::string, std::string> down_;
  std::map<std::string, int> queues_;
};

gpu::RunnerState backend_runner(const std::string& id, const std::string& runner_id) {
  gpu::RunnerState r = runner(id, "idle", {}, "backend");
  r.runner_id = runner_id;
  r.pid = 0;
  return r;
}

class DevicePoolTest : public ::testing::Test {
 protected:
  // The job's events with `code`.
  int events_with_code(const std::string& job_id, const std::string& code) {
    int count = 0;
    for (const auto& event : store_.events_after(job_id, 0, 1000)) count += event.code == code;
    return count;
  }

  test::TestDir dir_{"df_device_pool_"};
  store::SqliteStore store_{(dir_.path() / "db.sqlite3").string()};
  std::unique_ptr<queue::Queue> queue_ = queue::open_queue("db", store_);
  gpu::RunnerRoster roster_;
  FakeBackendHealth backends_;
  DevicePool pool_{roster_, store_, &backends_};
};

TEST_F(DevicePoolTest, AClaimMovesToTheWarmIdleWorkerInTheStore) {
  pool_.join(runner("w0", "idle", {}), [] {});
  pool_.join(runner("w1", "idle", {"sdxl.safetensors"}, "cuda:1"), [] {});
  store_.create_job(generate_job("sdxl.safetensors"));
  auto claimed = store_.claim_job("w0", 15000);
  ASSERT_TRUE(claimed);
  const queue::Delivery delivery{*claimed, "receipt-1"};

  const RunnerChoice choice = pool_.choose(*claimed, "w0");
  ASSERT_EQ(choice.action, RunnerChoice::Action::kHandOver);
  ASSERT_EQ(choice.worker_id, "w1");
  ASSERT_TRUE(pool_.hand_over(delivery, "w0", choice.worker_id, 15000));
  EXPECT_FALSE(pool_.take_handed("w0"));
  auto handed = pool_.take_handed("w1");
  ASSERT_TRUE(handed);
  EXPECT_EQ(handed->job.id, claimed->id);
  EXPECT_EQ(handed->job.worker_id, "w1");
  EXPECT_EQ(handed->receipt, "receipt-1") << "the queue's handle goes with it";
  EXPECT_EQ(store_.get_job(claimed->id)->worker_id, "w1");
  EXPECT_EQ(handed->job.max_attempts - handed->job.attempts,
            claimed->max_attempts - claimed->attempts) << "the hand-off uses up no attempt";
  EXPECT_EQ(roster_.find("w1")->state, "busy") << "taken until it runs the job";
  EXPECT_FALSE(pool_.take_handed("w1"));
  EXPECT_EQ(events_with_code(claimed->id, "handed_over"), 1);
}

TEST_F(DevicePoolTest, AJobWarmNowhereElseStaysWithItsClaimer) {
  pool_.join(runner("w0", "idle", {}), [] {});
  pool_.join(runner("w1", "idle", {"sd15.safetensors"}, "cuda:1"), [] {});
  store_.create_job(generate_job("sdxl.safetensors"));
  auto claimed = store_.claim_job("w0", 15000);
  ASSERT_TRUE(claimed);
  EXPECT_EQ(pool_.choose(*claimed, "w0").action, RunnerChoice::Action::kRunHere);
  EXPECT_EQ(store_.get_job(claimed->id)->worker_id, "w0");
}

TEST_F(DevicePoolTest, AJobForABackendGoesToItsIdleWorker) {
  pool_.join(runner("w0", "idle", {}), [] {});
  pool_.join(backend_runner("b0", "backend:a"), [] {});
  Job job = generate_job("sdxl.safetensors");
  job.spec["runners"] = {"backend:a"};
  store_.create_job(job);
  auto claimed = store_.claim_job("w0", 15000);
  ASSERT_TRUE(claimed);
  const RunnerChoice choice = pool_.choose(*claimed, "w0");
  ASSERT_EQ(choice.action, RunnerChoice::Action::kHandOver);
  ASSERT_TRUE(pool_.hand_over({*claimed, ""}, "w0", choice.worker_id, 15000));
  auto handed = pool_.take_handed("b0");
  ASSERT_TRUE(handed);
  EXPECT_EQ(handed->job.worker_id, "b0");
}

TEST_F(DevicePoolTest, TheBackendsHealthAndQueuesAreReadWhenAJobIsPlaced) {
  pool_.join(backend_runner("b0", "backend:a"), [] {});
  pool_.join(backend_runner("b1", "backend:b"), [] {});
  Job job = generate_job("sdxl.safetensors");
  job.spec["runners"] = {"backend:a", "backend:b"};
  backends_.queues_ = {{"backend:a", 3}, {"backend:b", 1}};
  auto choice = pool_.choose(job, "b0");
  EXPECT_EQ(choice.action, RunnerChoice::Action::kHandOver);
  EXPECT_EQ(choice.worker_id, "b1") << "the shorter queue of its own";
  EXPECT_EQ(pool_.backend_queue("backend:a"), 3);
  EXPECT_EQ(pool_.backend_queue("native"), 0);

  pool_.backend_failed("backend:b", "connection refused");
  EXPECT_EQ(backends_.down_.at("backend:b"), "connection refused");
  EXPECT_FALSE(pool_.backend_up("backend:b"));
  EXPECT_TRUE(pool_.backend_up("native"));
  EXPECT_EQ(pool_.choose(job, "b0").action, RunnerChoice::Action::kRunHere);
  pool_.backend_failed("backend:a", "connection refused");
  EXPECT_EQ(pool_.choose(job, "b0").action, RunnerChoice::Action::kWait);
}

TEST_F(DevicePoolTest, AWaitingJobGoesBackWithoutUsingAnAttemptAndSaysWhyOncePerReason) {
  pool_.join(backend_runner("b0", "backend:a"), [] {});
  const Job job = generate_job("sdxl.safetensors");  // native only: no native runner here
  store_.create_job(job);
  const int64_t before = now_ms();
  auto claimed = store_.claim_job("b0", 15000);
  ASSERT_TRUE(claimed);
  const RunnerChoice choice = pool_.choose(*claimed, "b0");
  ASSERT_EQ(choice.action, RunnerChoice::Action::kWait);
  EXPECT_TRUE(pool_.hold_back({*claimed, ""}, "b0", choice.reason, *queue_));

  auto queued = store_.get_job(job.id);
  EXPECT_EQ(queued->status, JobStatus::kQueued);
  EXPECT_GE(queued->run_after_ms, before + kRunnerWaitMs) << "not claimed again at once";
  EXPECT_EQ(queued->max_attempts - queued->attempts, claimed->max_attempts - claimed->attempts + 1)
      << "the claim used up no attempt";
  EXPECT_EQ(queued->error.value("code", ""), "waiting_for_runner");
  EXPECT_EQ(queued->error["details"].value("wait_ms", int64_t{0}), kRunnerWaitMs)
      << "the next wait for the same reason doubles it";
  EXPECT_FALSE(store_.claim_job("b0", 15000)) << "due again only after the wait";

  EXPECT_EQ(events_with_code(job.id, "waiting_for_runner"), 1);
}

TEST_F(DevicePoolTest, AJobBackForTheSameReasonGetsNoSecondWaitingEvent) {
  pool_.join(backend_runner("b0", "backend:a"), [] {});
  const std::string reason = "Waiting for a runner that can run this job (native).";
  for (const std::string& before : {reason, std::string("Every runner is busy.")}) {
    const Job job = generate_job("sdxl.safetensors");
    store_.create_job(job);
    auto claimed = store_.claim_job("b0", 15000);
    ASSERT_TRUE(claimed);
    claimed->error = {{"code", "waiting_for_runner"}, {"message", before}};  // as it came back
    EXPECT_EQ(pool_.hold_back({*claimed, ""}, "b0", reason, *queue_), before != reason);
    EXPECT_EQ(events_with_code(job.id, "waiting_for_runner"), before != reason ? 1 : 0);
    EXPECT_EQ(store_.get_job(job.id)->status, JobStatus::kQueued);
  }
}

TEST_F(DevicePoolTest, FreeRequestsReachTheNamedWorker) {
  int asked = 0;
  pool_.join(runner("w0", "idle", {}), [&] { ++asked; });
  pool_.request_free("w0");
  pool_.request_free("no-such-worker");
  EXPECT_EQ(asked, 1);
}

TEST_F(DevicePoolTest, ADeviceOutOfRotationSaysSoOnceAndLoudlyWhenItWasTheLast) {
  std::mutex mutex;
  std::vector<std::string> lines;
  const auto token = telemetry::service_log().listen([&](const telemetry::LogEntry& entry) {
    std::lock_guard lock(mutex);
    lines.push_back(entry.message.substr(0, entry.message.find('\n')));
  });
  pool_.join(runner("w0", "idle", {"a.ckpt"}, "cuda:0"), [] {});
  pool_.join(runner("w1", "idle", {}, "cuda:1"), [] {});
  pool_.take_out_of_rotation("w1", "its runner sees no cuda device");
  const auto out = roster_.find("w1");
  EXPECT_EQ(out->state, "out_of_rotation");
  EXPECT_EQ(out->reason, "its runner sees no cuda device");
  EXPECT_EQ(roster_.find("w0")->state, "idle");
  pool_.take_out_of_rotation("w0", "its runner was lost in 3 jobs in a row");
  telemetry::service_log().unlisten(token);
  std::lock_guard lock(mutex);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "device cuda:1 taken out of rotation: its runner sees no cuda device");
  EXPECT_EQ(lines[1], "device cuda:0 taken out of rotation: its runner was lost in 3 jobs in a row");
  EXPECT_NE(lines[2].find("every device is out of rotation"), std::string::npos) << lines[2];
}

TEST(RunnerWait, DoublesWhileTheSameReasonRepeatsAndStartsOverForANewOne) {
  const std::string reason = "Every runner that can run this job is busy.";
  const nlohmann::json none;
  EXPECT_EQ(runner_wait_ms(none, reason), kRunnerWaitMs);
  nlohmann::json last = {{"code", "waiting_for_runner"}, {"message", reason},
                         {"details", {{"wait_ms", kRunnerWaitMs}}}};
  EXPECT_EQ(runner_wait_ms(last, reason), 2 * kRunnerWaitMs);
  last["details"]["wait_ms"] = kRunnerWaitMaxMs;
  EXPECT_EQ(runner_wait_ms(last, reason), kRunnerWaitMaxMs) << "never longer than the longest wait";
  EXPECT_EQ(runner_wait_ms(last, "The backend a does not answer."), kRunnerWaitMs);
  const nlohmann::json failure = {{"code", "runner_crashed"}, {"message", reason}};
  EXPECT_EQ(runner_wait_ms(failure, reason), kRunnerWaitMs);
}

}  // namespace
}  // namespace df::worker

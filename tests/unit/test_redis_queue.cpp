// The Redis Streams queue against a real redis-server and a SQLite store: URL parsing, dispatch
// once, priority bands, delayed retries, takeover after a lease, settling, dead letters,
// reconciling what Redis lost, outages and concurrent claims.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/ids.h"
#include "queue/redis_connection.h"
#include "queue/redis_queue.h"
#include "redis_server.h"
#include "store/store.h"
#include "test_support.h"

namespace df::queue {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr int64_t kLongLease = 60000;
constexpr int64_t kAnHour = 3'600'000;

// ---- URL parsing ---------------------------------------------------------------------------

TEST(RedisQueueUrl, ReadsEveryPart) {
  const RedisQueueSettings settings = parse_redis_queue_url(
      "redis://:s%40cret@redis.internal:6380/2?prefix=df-test&reconcile_ms=2500");
  EXPECT_EQ(settings.host, "redis.internal");
  EXPECT_EQ(settings.port, 6380);
  EXPECT_EQ(settings.db, 2);
  EXPECT_EQ(settings.password, "s@cret");
  EXPECT_EQ(settings.username, "");
  EXPECT_EQ(settings.prefix, "df-test");
  EXPECT_EQ(settings.reconcile_ms, 2500);
}

TEST(RedisQueueUrl, DefaultsWhatItLeavesOut) {
  const RedisQueueSettings settings = parse_redis_queue_url("redis://localhost");
  EXPECT_EQ(settings.host, "localhost");
  EXPECT_EQ(settings.port, 6379);
  EXPECT_EQ(settings.db, 0);
  EXPECT_EQ(settings.password, "");
  EXPECT_EQ(settings.prefix, "dreamforge");
  EXPECT_EQ(settings.reconcile_ms, 10000);
  EXPECT_EQ(parse_redis_queue_url("redis://localhost/").db, 0);
}

TEST(RedisQueueUrl, ReadsAUserAndAnIpv6Host) {
  const RedisQueueSettings user = parse_redis_queue_url("redis://queue:pw@10.0.0.5");
  EXPECT_EQ(user.username, "queue");
  EXPECT_EQ(user.password, "pw");
  EXPECT_EQ(parse_redis_queue_url("redis://secret@h").password, "secret");

  const RedisQueueSettings v6 = parse_redis_queue_url("redis://[::1]:7000/3");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 7000);
  EXPECT_EQ(v6.db, 3);
}

TEST(RedisQueueUrl, RefusesMalformedUrlsNamingTheVariable) {
  for (const std::string url : {"http://localhost",
                                "rediss://localhost",
                                "redis://",
                                "redis://:6379",
                                "redis://h:",
                                "redis://h:0",
                                "redis://h:65536",
                                "redis://h:+1",
                                "redis://h:port",
                                "redis://h/db",
                                "redis://h/-1",
                                "redis://h?prefix=",
                                "redis://h?prefix=a%20b",
                                "redis://h?reconcile_ms=0",
                                "redis://h?reconcile_ms=soon",
                                "redis://h?color=red",
                                "redis://:@h",
                                "redis://[::1",
                                "redis://[::1]x",
                                "redis://:%zz@h"}) {
    const Error error = test::error_of([&] { parse_redis_queue_url(url); });
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument) << url;
    EXPECT_NE(std::string(error.what()).find("DREAMFORGE_QUEUE_URL"), std::string::npos) << url;
  }
}

TEST(RedisQueueUrl, NeverRepeatsThePassword) {
  const Error error =
      test::error_of([] { parse_redis_queue_url("redis://:topsecret@host:notaport"); });
  EXPECT_EQ(std::string(error.what()).find("topsecret"), std::string::npos) << error.what();
}

// ---- The queue against a real server -------------------------------------------------------

class RedisQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::RedisServer::find_binary().empty()) {
      GTEST_SKIP() << "redis-server is not installed";
    }
    server_ = &test::RedisServer::instance();
    server_->start();
    server_->flush();
    dir_ = std::make_unique<test::TestDir>("df_redis_queue_");
    store_ = store::open_store("sqlite://" + (dir_->path() / "jobs.sqlite3").string());
    queue_ = make_queue(kAnHour);
    // Claims reconcile only where a test asks for it, so that these tests see what enqueue does.
    redis({"SET", queue_->key("reconcile"), "1", "PX", std::to_string(kAnHour)});
  }

  std::unique_ptr<RedisQueue> make_queue(int64_t reconcile_ms) {
    RedisQueueSettings settings;
    settings.port = server_->port();
    settings.prefix = "test";
    settings.reconcile_ms = reconcile_ms;
    return std::make_unique<RedisQueue>(settings, *store_);
  }

  // A queued job in the store (not yet in the queue).
  Job create_job(int priority = 0) {
    Job job;
    job.id = new_uuid_v7();
    job.type = "generate";
    job.spec = {{"prompt", "a lighthouse at dusk"}};
    job.request_hash = "hash-" + job.id;
    job.priority = priority;
    job.created_ms = now_ms();
    return store_->create_job(job).job;
  }

  // A queued job in the store that is not due before `due_ms`: an earlier run handed it back.
  Job create_delayed_job(int64_t due_ms) {
    const Job job = create_job();
    EXPECT_TRUE(store_->claim_job_by_id(job.id, "earlier-worker", kLongLease));
    EXPECT_TRUE(store_->requeue_job({job.id, "earlier-worker", 1}, due_ms, nullptr, false));
    return *store_->get_job(job.id);
  }

  Job enqueue_new_job(int priority = 0) {
    Job job = create_job(priority);
    queue_->enqueue(job);
    return job;
  }

  RedisReply redis(const std::vector<std::string>& args) {
    return RedisConnection(server_->endpoint()).call(args, args.front());
  }

  long long integer(const std::vector<std::string>& args) {
    return reply_integer(*redis(args), args.front());
  }

  // Messages in the three streams together.
  long long stream_length() {
    long long total = 0;
    for (int priority : {1, 0, -1}) total += integer({"XLEN", queue_->stream_for(priority)});
    return total;
  }

  // Messages read by some worker and not yet acknowledged, in the three streams together.
  long long pending() {
    long long total = 0;
    for (int priority : {1, 0, -1}) {
      RedisConnection connection(server_->endpoint());
      const RedisReply reply =
          connection.command({"XPENDING", queue_->stream_for(priority), "workers"});
      if (reply->type == REDIS_REPLY_ARRAY) total += reply->element[0]->integer;
    }
    return total;
  }

  void finish(const Delivery& delivery) {
    const Job& job = delivery.job;
    Event end;
    end.job_id = job.id;
    end.type = "job_finished";
    end.data = {{"status", "succeeded"}};
    ASSERT_TRUE(store_->finish_job({job.id, job.worker_id, job.attempts}, JobStatus::kSucceeded,
                                   nullptr, end));
    queue_->settle(delivery, {});
  }

  test::RedisServer* server_ = nullptr;
  std::unique_ptr<test::TestDir> dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<RedisQueue> queue_;
};

TEST_F(RedisQueueTest, EnqueuedJobIsClaimedInTheStore) {
  const Job job = enqueue_new_job();

  const std::optional<Delivery> delivery = queue_->claim("worker-1", kLongLease, 0);
  ASSERT_TRUE(delivery);
  EXPECT_EQ(delivery->job.id, job.id);
  EXPECT_EQ(delivery->job.status, JobStatus::kRunning);
  EXPECT_EQ(delivery->job.worker_id, "worker-1");
  EXPECT_EQ(delivery->job.attempts, 1);
  EXPECT_EQ(delivery->receipt.rfind(queue_->stream_for(0) + " ", 0), 0u) << delivery->receipt;

  const std::optional<Job> stored = store_->get_job(job.id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->status, JobStatus::kRunning);
  EXPECT_EQ(stored->worker_id, "worker-1");
  EXPECT_FALSE(queue_->claim("worker-2", kLongLease, 0));
}

TEST_F(RedisQueueTest, EnqueueTwiceDispatchesOnce) {
  const Job job = enqueue_new_job();
  queue_->enqueue(job);

  EXPECT_EQ(stream_length(), 1);
  EXPECT_EQ(integer({"HLEN", queue_->key("dispatch")}), 1);
  ASSERT_TRUE(queue_->claim("worker-1", kLongLease, 0));
  EXPECT_FALSE(queue_->claim("worker-1", kLongLease, 0));
  EXPECT_FALSE(queue_->claim("worker-2", kLongLease, 0));
}

TEST_F(RedisQueueTest, HigherBandsAreClaimedFirst) {
  const Job low = enqueue_new_job(-5);
  const Job normal = enqueue_new_job(0);
  const Job high = enqueue_new_job(7);

  for (const Job* expected : {&high, &normal, &low}) {
    const std::optional<Delivery> delivery = queue_->claim("worker-1", kLongLease, 0);
    ASSERT_TRUE(delivery);
    EXPECT_EQ(delivery->job.id, expected->id) << "priority " << expected->priority;
  }
  EXPECT_EQ(low.priority, -5);
}

TEST_F(RedisQueueTest, DelayedRetryIsClaimableOnlyOnceDue) {
  enqueue_new_job();
  const std::optional<Delivery> first = queue_->claim("worker-1", kLongLease, 0);
  ASSERT_TRUE(first);
  // Due in 3 s: the checks that it is not claimable yet must all run before then, which a loaded
  // machine (slow SQLite commits, a descheduled test) may not manage in well under a second.
  const int64_t due = now_ms() + 3000;
  ASSERT_TRUE(store_->requeue_job({first->job.id, "worker-1", 1}, due, nullptr, true));
  queue_->settle(*first, {Settlement::kRetry, due, nullptr});

  EXPECT_EQ(integer({"ZCARD", queue_->key("delayed")}), 1);
  EXPECT_EQ(stream_length(), 0);
  EXPECT_FALSE(queue_->claim("worker-2", kLongLease, 0));

  const std::optional<Delivery> retry = queue_->claim("worker-2", kLongLease, 30000);
  ASSERT_TRUE(retry);
  EXPECT_GE(now_ms(), due);
  EXPECT_EQ(retry->job.id, first->job.id);
  EXPECT_EQ(retry->job.attempts, 2);
  EXPECT_EQ(integer({"ZCARD", queue_->key("delayed")}), 0);
}

TEST_F(RedisQueueTest, StoppedWorkersJobIsTakenOverAfterTheLeaseButATouchedOneIsNot) {
  // Long enough that the live worker below, renewing every 250 ms, keeps its lease even on a loaded
  // machine that stalls the test for a second or two.
  constexpr int64_t kShortLease = 3000;
  const Job abandoned = enqueue_new_job();
  const Job kept = enqueue_new_job();
  const std::optional<Delivery> of_stopped = queue_->claim("worker-stopped", kShortLease, 0);
  const std::optional<Delivery> of_live = queue_->claim("worker-live", kShortLease, 0);
  ASSERT_TRUE(of_stopped && of_live);
  ASSERT_EQ(of_stopped->job.id, abandoned.id);
  ASSERT_EQ(of_live->job.id, kept.id);

  // The live worker renews its lease and touches its delivery; the stopped one does nothing.
  // Another worker claims meanwhile, and gets a job once the stopped worker's lease is over.
  std::optional<Delivery> taken;
  const auto give_up = std::chrono::steady_clock::now() + milliseconds(10 * kShortLease);
  while (!taken && std::chrono::steady_clock::now() < give_up) {
    ASSERT_TRUE(store_->renew_lease({kept.id, "worker-live", 1}, kShortLease));
    queue_->touch(*of_live);
    taken = queue_->claim("worker-other", kShortLease, 0);
    if (!taken) std::this_thread::sleep_for(milliseconds(250));
  }
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->job.id, abandoned.id);
  EXPECT_EQ(taken->job.attempts, 2);
  EXPECT_EQ(taken->job.worker_id, "worker-other");
  ASSERT_TRUE(store_->renew_lease({kept.id, "worker-live", 1}, kShortLease));
  queue_->touch(*of_live);
  EXPECT_FALSE(queue_->claim("worker-other", kShortLease, 0));
  EXPECT_EQ(store_->get_job(kept.id)->worker_id, "worker-live");
}

TEST_F(RedisQueueTest, SettleLeavesNothingBehind) {
  enqueue_new_job();
  const std::optional<Delivery> delivery = queue_->claim("worker-1", kLongLease, 0);
  ASSERT_TRUE(delivery);
  EXPECT_EQ(pending(), 1);

  finish(*delivery);
  EXPECT_EQ(pending(), 0);
  EXPECT_EQ(stream_length(), 0);
  EXPECT_EQ(integer({"HLEN", queue_->key("dispatch")}), 0);
}

TEST_F(RedisQueueTest, ReconcileRemovesStoppedWorkersThatHoldNothing) {
  RedisQueueSettings settings;
  settings.port = server_->port();
  settings.prefix = "test";
  settings.reconcile_ms = kAnHour;
  settings.forget_consumers_idle_ms = 0;  // any consumer without messages counts as stopped
  RedisQueue queue(settings, *store_);
  queue.enqueue(create_job());
  queue.enqueue(create_job());
  const std::optional<Delivery> done = queue.claim("worker-done", kLongLease, 0);
  const std::optional<Delivery> busy = queue.claim("worker-busy", kLongLease, 0);
  ASSERT_TRUE(done && busy);
  queue.settle(*done, {});

  queue.reconcile();
  const RedisReply consumers = redis({"XINFO", "CONSUMERS", queue.stream_for(0), "workers"});
  std::vector<std::string> names;
  for (size_t i = 0; i < consumers->elements; ++i) {
    const redisReply& consumer = *consumers->element[i];
    for (size_t field = 0; field + 1 < consumer.elements; field += 2) {
      if (reply_text(*consumer.element[field]) == "name") {
        names.push_back(reply_text(*consumer.element[field + 1]));
      }
    }
  }
  EXPECT_EQ(names, std::vector<std::string>{"worker-busy"}) << "the one holding a job stays";
  queue.settle(*busy, {});
}

TEST_F(RedisQueueTest, DeadLetterLandsOnTheDeadStreamWithItsError) {
  enqueue_new_job();
  const std::optional<Delivery> delivery = queue_->claim("worker-1", kLongLease, 0);
  ASSERT_TRUE(delivery);
  const json error = {{"code", "oom"}, {"message", "out of GPU memory"}};
  queue_->settle(*delivery, {Settlement::kDeadLetter, 0, error});

  EXPECT_EQ(pending(), 0);
  const RedisReply dead = redis({"XRANGE", queue_->key("dead"), "-", "+"});
  ASSERT_EQ(dead->elements, 1u);
  const redisReply& fields = *dead->element[0]->element[1];
  json entry;
  for (size_t i = 0; i + 1 < fields.elements; i += 2) {
    entry[reply_text(*fields.element[i])] = reply_text(*fields.element[i + 1]);
  }
  EXPECT_EQ(entry["job_id"], delivery->job.id);
  EXPECT_EQ(entry["attempts"], "1");
  EXPECT_EQ(json::parse(entry["error"].get<std::string>()), error);
  EXPECT_GT(std::stoll(entry["failed_ms"].get<std::string>()), 0);
}

TEST_F(RedisQueueTest, ReconcileAfterFlushDispatchesEveryQueuedJobOnce) {
  constexpr int kQueued = 510;  // more than one page of the store
  for (int i = 0; i < kQueued; ++i) enqueue_new_job(i % 2 - 1);
  create_delayed_job(now_ms() + kAnHour);
  const Job running = enqueue_new_job(5);
  const std::optional<Delivery> delivery = queue_->claim("worker-1", kLongLease, 0);
  ASSERT_TRUE(delivery);
  ASSERT_EQ(delivery->job.id, running.id);

  server_->flush();
  // The delivery Redis forgot can still be renewed and settled.
  queue_->touch(*delivery);
  EXPECT_EQ(queue_->reconcile(), kQueued + 1);
  EXPECT_EQ(stream_length(), kQueued);
  EXPECT_EQ(integer({"ZCARD", queue_->key("delayed")}), 1);
  EXPECT_EQ(queue_->reconcile(), 0);
  EXPECT_EQ(stream_length(), kQueued);
  finish(*delivery);

  std::set<std::string> claimed;
  while (auto next = queue_->claim("worker-1", kLongLease, 0)) {
    EXPECT_TRUE(claimed.insert(next->job.id).second) << "claimed twice: " << next->job.id;
    finish(*next);
  }
  EXPECT_EQ(claimed.size(), static_cast<size_t>(kQueued));
  EXPECT_EQ(stream_length(), 0);
}

TEST_F(RedisQueueTest, ClaimsOwnReconcileFindsAJobThatWasNeverEnqueued) {
  queue_ = make_queue(200);
  redis({"DEL", queue_->key("reconcile")});
  EXPECT_FALSE(queue_->claim("worker-1", kLongLease, 0));  // reconciles an empty store

  const Job lost = create_job();  // committed, but the process died before enqueue
  const std::optional<Delivery> delivery = queue_->claim("worker-1", kLongLease, 30000);
  ASSERT_TRUE(delivery);
  EXPECT_EQ(delivery->job.id, lost.id);
}

TEST_F(RedisQueueTest, StrayMessagesAreDroppedAndEarlyOnesDelayed) {
  const std::string stream = queue_->stream_for(0);
  redis({"XADD", stream, "*", "note", "no job here"});
  redis({"XADD", stream, "*", "job_id", "no-such-job"});
  const Job early = create_delayed_job(now_ms() + kAnHour);
  redis({"XADD", stream, "*", "job_id", early.id});

  EXPECT_FALSE(queue_->claim("worker-1", kLongLease, 0));
  EXPECT_EQ(stream_length(), 0);
  EXPECT_EQ(pending(), 0);
  EXPECT_EQ(integer({"ZCARD", queue_->key("delayed")}), 1);
}

TEST_F(RedisQueueTest, OutageThrowsUnavailableAndHealsWithoutANewQueue) {
  queue_->ping();  // leaves an idle connection in the pool, which the restart closes
  const Job before = enqueue_new_job();
  server_->stop();

  std::unique_ptr<RedisQueue> opened_while_down;
  EXPECT_NO_THROW(opened_while_down = make_queue(kAnHour));
  const Job during = create_job();
  for (RedisQueue* queue : {queue_.get(), opened_while_down.get()}) {
    const Error error = test::error_of([&] { queue->ping(); });
    EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(error.what()).find("redis"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("unreachable"), std::string::npos) << error.what();
    EXPECT_EQ(test::error_code_of([&] { queue->enqueue(during); }), ErrorCode::kUnavailable);
    EXPECT_EQ(test::error_code_of([&] { queue->claim("worker-1", kLongLease, 0); }),
              ErrorCode::kUnavailable);
    EXPECT_EQ(test::error_code_of([&] { queue->reconcile(); }), ErrorCode::kUnavailable);
  }

  server_->start();  // empty: Redis kept nothing
  EXPECT_NO_THROW(queue_->ping());
  EXPECT_NO_THROW(opened_while_down->ping());
  // The first claim after the outage reconciles: both jobs come back, each once.
  std::set<std::string> claimed;
  while (auto delivery = queue_->claim("worker-1", kLongLease, 0)) {
    EXPECT_TRUE(claimed.insert(delivery->job.id).second);
  }
  EXPECT_EQ(claimed, (std::set<std::string>{before.id, during.id}));
}

TEST_F(RedisQueueTest, LogsInAndSelectsItsDatabase) {
  redis({"CONFIG", "SET", "requirepass", "open sesame"});
  // Lifts the password again however the test ends, for the tests after it.
  struct PasswordLift {
    queue::RedisEndpoint endpoint;
    ~PasswordLift() {
      RedisConnection(endpoint).call({"CONFIG", "SET", "requirepass", ""}, "CONFIG");
    }
  } lift{{"127.0.0.1", server_->port(), 0, "", "open sesame"}};

  RedisQueueSettings settings;
  settings.port = server_->port();
  settings.prefix = "test";
  settings.db = 2;
  settings.password = "open sesame";
  RedisQueue queue(settings, *store_);
  queue.enqueue(create_job());
  RedisConnection db2({"127.0.0.1", server_->port(), 2, "", "open sesame"});
  EXPECT_EQ(reply_integer(*db2.call({"HLEN", queue.key("dispatch")}, "HLEN"), "HLEN"), 1);

  settings.password = "wrong";
  const Error refused = test::error_of([&] { RedisQueue(settings, *store_).ping(); });
  EXPECT_EQ(refused.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(std::string(refused.what()).find("wrong"), std::string::npos) << refused.what();
}

TEST_F(RedisQueueTest, ConcurrentClaimsNeverShareAJob) {
  constexpr int kJobs = 60;
  constexpr int kWorkers = 6;
  for (int i = 0; i < kJobs; ++i) enqueue_new_job(i % 3 - 1);

  std::mutex mutex;
  std::vector<std::string> claimed;
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      const std::string worker_id = "worker-" + std::to_string(w);
      while (auto delivery = queue_->claim(worker_id, kLongLease, 300)) {
        {
          std::lock_guard lock(mutex);
          claimed.push_back(delivery->job.id);
        }
        finish(*delivery);
      }
    });
  }
  for (auto& worker : workers) worker.join();

  const std::set<std::string> distinct(claimed.begin(), claimed.end());
  EXPECT_EQ(claimed.size(), static_cast<size_t>(kJobs));
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kJobs));
  EXPECT_EQ(pending(), 0);
}

TEST_F(RedisQueueTest, WakeEndsAWaitingClaimEarly) {
  // A wake before the claim has begun to wait does not end that claim's wait, and a loaded machine
  // may start the claim late: wake repeatedly until the claim has returned.
  std::atomic<bool> returned{false};
  std::thread waker([&] {
    while (!returned) {
      std::this_thread::sleep_for(milliseconds(200));
      queue_->wake();
    }
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(queue_->claim("worker-1", kLongLease, 120000));
  returned = true;
  waker.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60))
      << "the claim waited for its whole wait instead of being woken";
}

}  // namespace
}  // namespace df::queue

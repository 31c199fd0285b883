// PostgresEventListener against a real PostgreSQL on loopback: events appended by another store
// instance reach on_news with their job id; it stops promptly; it rides out a server restart and
// a server that is down when it starts.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/ids.h"
#include "core/job.h"
#include "postgres_server.h"
#include "store/postgres_event_listener.h"
#include "store/store.h"

namespace df::store {
namespace {

using namespace std::chrono_literals;

// Generous: waits end as soon as what they wait for happens. The listener retries a connection
// with a delay growing to 5 s, and a loaded machine may take seconds to restart the server, so a
// reconnect can take well over 5 s.
constexpr auto kPatience = 30s;

// Everything on_news was told, in order, and waits for it.
class News {
 public:
  std::function<void(const std::string&)> receiver() {
    return [this](const std::string& job_id) {
      std::lock_guard lock(mutex_);
      told_.push_back(job_id);
      changed_.notify_all();
    };
  }

  // Waits until `job_id` was told at least `times` times; false when it was not within kPatience.
  bool wait_for(const std::string& job_id, size_t times = 1) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kPatience, [&] { return count_locked(job_id) >= times; });
  }

  size_t count(const std::string& job_id) {
    std::lock_guard lock(mutex_);
    return count_locked(job_id);
  }

 private:
  size_t count_locked(const std::string& job_id) const {
    return static_cast<size_t>(std::count(told_.begin(), told_.end(), job_id));
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> told_;
};

// Whether `condition` became true within kPatience.
bool eventually(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// Whether destroying `listener` returned within kPatience (it should take well under a second).
bool destroyed_promptly(std::unique_ptr<PostgresEventListener> listener) {
  auto destroyed = std::async(std::launch::async, [&listener] { listener.reset(); });
  return destroyed.wait_for(kPatience) == std::future_status::ready;
}

Job make_job(const std::string& id) {
  Job job;
  job.id = id;
  job.type = "generate";
  job.spec = {{"prompt", "a lighthouse at dusk"}};
  job.request_hash = "hash-" + id;
  job.max_attempts = 3;
  job.created_ms = now_ms();
  return job;
}

Event progress_event(const std::string& job_id) {
  Event event;
  event.job_id = job_id;
  event.type = "progress";
  event.message = "step 1/20";
  event.plain = "Working on it";
  event.data = {{"progress", 0.05}};
  event.created_ms = now_ms();
  return event;
}

class PostgresEventListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    try {
      url_ = test::PostgresServer::instance().create_database();
    } catch (const std::exception& e) {
      FAIL() << e.what();
    }
    store_ = open_store(url_);  // applies the migrations, the events trigger among them
  }

  std::unique_ptr<PostgresEventListener> listen(DatabaseNews news = DatabaseNews::kEvents) {
    return std::make_unique<PostgresEventListener>(url_, news, news_.receiver());
  }

  std::string url_;
  std::unique_ptr<Store> store_;
  News news_;
};

TEST_F(PostgresEventListenerTest, EventAppendedThroughAnotherStoreIsToldWithItsJobId) {
  store_->create_job(make_job("job-1"));  // its job_queued event is news from before the listener
  const auto listener = listen();
  ASSERT_TRUE(eventually([&] { return listener->listening(); }));
  EXPECT_TRUE(news_.wait_for("")) << "told that anything may have changed before it listened";
  EXPECT_EQ(news_.count("job-1"), 0u);

  const auto worker_side = open_store(url_);
  EXPECT_GT(worker_side->append_event(progress_event("job-1")), 0);
  EXPECT_TRUE(news_.wait_for("job-1"));
}

TEST_F(PostgresEventListenerTest, EveryJobWithNewEventsIsTold) {
  const auto listener = listen();
  ASSERT_TRUE(eventually([&] { return listener->listening(); }));
  const auto worker_side = open_store(url_);
  worker_side->create_job(make_job("job-a"));
  worker_side->create_job(make_job("job-b"));
  worker_side->append_event(progress_event("job-b"));
  EXPECT_TRUE(news_.wait_for("job-a"));
  EXPECT_TRUE(news_.wait_for("job-b"));
  EXPECT_TRUE(listener->listening());
}

TEST_F(PostgresEventListenerTest, QueuedJobsNewsTellsOfNewJobsOnly) {
  const auto listener = listen(DatabaseNews::kQueuedJobs);
  ASSERT_TRUE(eventually([&] { return listener->listening(); }));
  const auto api_side = open_store(url_);
  api_side->create_job(make_job("job-q"));
  EXPECT_TRUE(news_.wait_for("job-q"));
  api_side->append_event(progress_event("job-q"));
  api_side->create_job(make_job("job-r"));
  EXPECT_TRUE(news_.wait_for("job-r"));
  // News arrives in commit order: the progress event's would have come before job-r's.
  EXPECT_EQ(news_.count("job-q"), 1u) << "progress is not news of a queued job";
}

TEST_F(PostgresEventListenerTest, StopsPromptlyWhileIdle) {
  auto listener = listen();
  ASSERT_TRUE(eventually([&] { return listener->listening(); }));
  EXPECT_TRUE(destroyed_promptly(std::move(listener)));
}

TEST_F(PostgresEventListenerTest, ListensAgainAfterTheServerRestarted) {
  const auto listener = listen();
  ASSERT_TRUE(eventually([&] { return listener->listening(); }));
  ASSERT_TRUE(news_.wait_for(""));

  auto& server = test::PostgresServer::instance();
  server.stop();
  EXPECT_TRUE(eventually([&] { return !listener->listening(); }));
  server.start();
  ASSERT_TRUE(eventually([&] { return listener->listening(); }));
  EXPECT_TRUE(news_.wait_for("", 2)) << "told again that anything may have changed meanwhile";

  open_store(url_)->create_job(make_job("job-after-restart"));
  EXPECT_TRUE(news_.wait_for("job-after-restart"));
}

TEST_F(PostgresEventListenerTest, StartsListeningOnceTheServerIsUp) {
  auto& server = test::PostgresServer::instance();
  server.stop();
  const auto listener = listen();
  EXPECT_FALSE(listener->listening());
  server.start();
  ASSERT_TRUE(eventually([&] { return listener->listening(); }));
  EXPECT_TRUE(news_.wait_for(""));

  open_store(url_)->create_job(make_job("job-1"));
  EXPECT_TRUE(news_.wait_for("job-1"));
}

TEST_F(PostgresEventListenerTest, UnreachableServerNeitherThrowsNorHoldsUpTheStop) {
  auto listener = std::make_unique<PostgresEventListener>(
      "postgres://postgres@127.0.0.1:1/none", DatabaseNews::kEvents, news_.receiver());
  std::this_thread::sleep_for(300ms);  // let it fail and retry at least once
  EXPECT_FALSE(listener->listening());
  EXPECT_EQ(news_.count(""), 0u);
  EXPECT_TRUE(destroyed_promptly(std::move(listener)));
}

}  // namespace
}  // namespace df::store

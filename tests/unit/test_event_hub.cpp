// Tests of the in-process event hub: wake-ups per job, versions, unsubscribing, reentrancy,
// threads.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "api/event_hub.h"

namespace df::api {
namespace {

TEST(EventHub, NotifyWakesTheSubscribersOfThatJobOnly) {
  EventHub hub;
  int a = 0, b = 0, other = 0;
  hub.subscribe("job-a", [&] { ++a; });
  hub.subscribe("job-a", [&] { ++b; });
  hub.subscribe("job-b", [&] { ++other; });
  hub.notify("job-a");
  hub.notify("job-a");
  EXPECT_EQ(a, 2);
  EXPECT_EQ(b, 2);
  EXPECT_EQ(other, 0);
}

TEST(EventHub, SubscribersToAllJobsAreToldWhichJobHasNews) {
  EventHub hub;
  std::vector<std::string> told;
  const uint64_t token = hub.subscribe_all([&](const std::string& job_id) { told.push_back(job_id); });
  hub.notify("job-a");
  hub.notify("job-b");  // no subscriber of its own
  EXPECT_EQ(told, (std::vector<std::string>{"job-a", "job-b"}));
  hub.unsubscribe_all(token);
  hub.notify("job-c");
  EXPECT_EQ(told.size(), 2u);
}

TEST(EventHub, NotifyWatchedWakesEveryJobWithSubscribers) {
  EventHub hub;
  int a = 0, b = 0;
  hub.subscribe("job-a", [&] { ++a; });
  hub.subscribe("job-b", [&] { ++b; });
  std::vector<std::string> told;
  hub.subscribe_all([&](const std::string& job_id) { told.push_back(job_id); });
  hub.notify_watched();
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 1);
  EXPECT_EQ(told, (std::vector<std::string>{"job-a", "job-b"}));
  EXPECT_EQ(hub.version("job-a"), 1u);
}

TEST(EventHub, VersionChangesWithEveryNotify) {
  EventHub hub;
  hub.subscribe("job", [] {});
  const uint64_t first = hub.version("job");
  hub.notify("job");
  const uint64_t second = hub.version("job");
  hub.notify("job");
  EXPECT_NE(first, second);
  EXPECT_NE(second, hub.version("job"));
  EXPECT_EQ(hub.version("unknown"), 0u);
}

TEST(EventHub, UnsubscribedWakerIsNotCalled) {
  EventHub hub;
  int kept = 0, dropped = 0;
  hub.subscribe("job", [&] { ++kept; });
  const uint64_t token = hub.subscribe("job", [&] { ++dropped; });
  hub.unsubscribe("job", token);
  hub.notify("job");
  EXPECT_EQ(kept, 1);
  EXPECT_EQ(dropped, 0);
}

TEST(EventHub, TokensAreDistinctAndUnknownOnesAreIgnored) {
  EventHub hub;
  const uint64_t first = hub.subscribe("job", [] {});
  const uint64_t second = hub.subscribe("other", [] {});
  EXPECT_NE(first, 0u);
  EXPECT_NE(first, second);
  EXPECT_NO_THROW(hub.unsubscribe("job", 999));
  EXPECT_NO_THROW(hub.unsubscribe("never", first));
  EXPECT_NO_THROW(hub.notify("nobody-listens"));
}

TEST(EventHub, WakerMayUnsubscribeItselfAndSubscribeOthers) {
  EventHub hub;
  int calls = 0;
  uint64_t token = 0;
  token = hub.subscribe("job", [&] {
    ++calls;
    hub.unsubscribe("job", token);
    hub.subscribe("job", [] {});
    (void)hub.version("job");
  });
  hub.notify("job");
  hub.notify("job");
  EXPECT_EQ(calls, 1);
}

TEST(EventHub, ConcurrentSubscribersAndNotifiersAreSafe) {
  EventHub hub;
  std::atomic<int> calls{0};
  hub.subscribe("job", [&] { calls.fetch_add(1); });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        const uint64_t token = hub.subscribe("job", [] {});
        hub.notify("job");
        hub.unsubscribe("job", token);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(calls.load(), 2000);
  EXPECT_NE(hub.version("job"), 0u);
}

}  // namespace
}  // namespace df::api

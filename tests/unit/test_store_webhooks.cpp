// The webhook outbox of both stores: deliveries written with the events a subscription wants,
// progress coalesced and throttled, claims leased one per job, attempts fenced and recorded.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store/store.h"
#include "store_contract.h"

namespace df::store {
namespace {

using namespace contract;  // NOLINT: the fixture and its makers

class WebhookOutbox : public StoreContract {
 protected:
  // A job subscribed to `events` at the receiver, claimed by worker w1.
  Job subscribed_running_job(const std::string& id, std::vector<std::string> events) {
    Job job = make_job(id);
    job.webhook = {"https://hooks.example.com/in", std::move(events), "key-1"};
    store_->create_job(job);
    auto claimed = store_->claim_job_by_id(id, "w1", kLongLease);
    EXPECT_TRUE(claimed);
    return *claimed;
  }
  int64_t append(const Job& job, const std::string& type) {
    const Lease lease = lease_of(job);
    return store_->append_event(make_event(job.id, type, 0), &lease);
  }
  std::vector<std::string> events_of(const std::string& job_id) {
    std::vector<std::string> out;
    for (const auto& delivery : store_->list_webhook_deliveries(job_id)) {
      out.push_back(delivery.event + ":" + delivery.status);
    }
    return out;
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, WebhookOutbox,
                         ::testing::Values(Backend{"Sqlite", new_sqlite_database},
                                           Backend{"Postgres", new_postgres_database}),
                         [](const auto& info) { return info.param.name; });

TEST_P(WebhookOutbox, SubscriptionReadsBackWithTheJob) {
  const Job job = subscribed_running_job(job_id(1), {"start", "completed"});
  const auto read = store_->get_job(job.id);
  EXPECT_EQ(read->webhook.url, "https://hooks.example.com/in");
  EXPECT_EQ(read->webhook.events, (std::vector<std::string>{"start", "completed"}));
  EXPECT_EQ(read->webhook.key_id, "key-1");
  store_->create_job(make_job(job_id(2)));
  EXPECT_TRUE(store_->get_job(job_id(2))->webhook.url.empty());
}

TEST_P(WebhookOutbox, OnlyTheSubscribedEventsBecomeDeliveries) {
  const Job job = subscribed_running_job(job_id(1), {"start", "item", "completed"});
  const int64_t started = append(job, "job_started");
  append(job, "progress");  // not subscribed
  append(job, "item_started");  // never a webhook event
  const int64_t item = append(job, "item_finished");
  ASSERT_TRUE(store_->finish_job(lease_of(job), JobStatus::kSucceeded, nullptr,
                                 terminal_event(job.id, "succeeded")));
  const auto deliveries = store_->list_webhook_deliveries(job.id);
  ASSERT_EQ(deliveries.size(), 3u);
  EXPECT_EQ(deliveries[0].event, "start");
  EXPECT_EQ(deliveries[0].event_id, started);
  EXPECT_EQ(deliveries[1].event, "item");
  EXPECT_EQ(deliveries[1].event_id, item);
  EXPECT_EQ(deliveries[2].event, "completed");
  for (const auto& delivery : deliveries) {
    EXPECT_EQ(delivery.status, "pending");
    EXPECT_EQ(delivery.url, "https://hooks.example.com/in");
    EXPECT_EQ(delivery.attempts, 0);
    EXPECT_EQ(delivery.id.rfind("msg_", 0), 0u) << delivery.id;
  }
  EXPECT_NE(deliveries[0].id, deliveries[1].id);
}

TEST_P(WebhookOutbox, JobsWithoutWebhookHaveNoDeliveries) {
  const Job job = create_and_claim(job_id(1));
  append(job, "job_started");
  append(job, "progress");
  ASSERT_TRUE(store_->finish_job(lease_of(job), JobStatus::kFailed, {{"code", "x"}},
                                 terminal_event(job.id, "failed")));
  EXPECT_TRUE(store_->list_webhook_deliveries(job.id).empty());
  EXPECT_TRUE(store_->claim_webhook_deliveries(10, kLongLease).empty());
}

TEST_P(WebhookOutbox, CanceledWhileQueuedIsACompletedDelivery) {
  Job job = make_job(job_id(1));
  job.webhook = {"https://hooks.example.com/in", {"completed"}, ""};
  store_->create_job(job);
  ASSERT_EQ(store_->cancel_job(job.id), CancelOutcome::kCanceled);
  EXPECT_EQ(events_of(job.id), (std::vector<std::string>{"completed:pending"}));
}

TEST_P(WebhookOutbox, ProgressWaitingToBeSentIsCoalescedIntoOne) {
  const Job job = subscribed_running_job(job_id(1), {"progress"});
  append(job, "progress");
  append(job, "progress");
  const int64_t last = append(job, "progress");
  const auto deliveries = store_->list_webhook_deliveries(job.id);
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_EQ(deliveries[0].event_id, last) << "the newest progress is the one sent";
}

TEST_P(WebhookOutbox, ProgressAfterOneWasSentWaitsForTheInterval) {
  const Job job = subscribed_running_job(job_id(1), {"progress"});
  append(job, "progress");
  const auto claimed = store_->claim_webhook_deliveries(10, kLongLease);
  ASSERT_EQ(claimed.size(), 1u);
  append(job, "progress");  // the first is in flight: a second delivery, not coalesced
  const auto deliveries = store_->list_webhook_deliveries(job.id);
  ASSERT_EQ(deliveries.size(), 2u);
  EXPECT_GE(deliveries[1].next_attempt_ms,
            claimed[0].first_attempt_ms + kProgressWebhookIntervalMs);
}

TEST_P(WebhookOutbox, CompletionSupersedesProgressStillWaiting) {
  const Job job = subscribed_running_job(job_id(1), {"progress", "completed"});
  append(job, "progress");
  ASSERT_TRUE(store_->finish_job(lease_of(job), JobStatus::kSucceeded, nullptr,
                                 terminal_event(job.id, "succeeded")));
  EXPECT_EQ(events_of(job.id),
            (std::vector<std::string>{"progress:superseded", "completed:pending"}));
}

TEST_P(WebhookOutbox, ClaimsLeaseOneDeliveryPerJobUntilItIsRecorded) {
  const Job first = subscribed_running_job(job_id(1), {"start", "item"});
  append(first, "job_started");
  append(first, "item_finished");
  const auto claimed = store_->claim_webhook_deliveries(10, kLongLease);
  ASSERT_EQ(claimed.size(), 1u) << "one per job: the job's next waits for this one";
  EXPECT_EQ(claimed[0].event, "start");
  EXPECT_EQ(claimed[0].attempts, 1);
  EXPECT_GT(claimed[0].lease_until_ms, now_ms());
  EXPECT_TRUE(store_->claim_webhook_deliveries(10, kLongLease).empty());

  ASSERT_TRUE(store_->record_webhook_attempt(
      {claimed[0].id, 1, "delivered", 0, 204, "", "{\"type\":\"job.start\"}"}));
  EXPECT_FALSE(store_->record_webhook_attempt({claimed[0].id, 1, "failed", 0, 500, "late", ""}))
      << "a recorded delivery is not recorded again";
  const auto next = store_->claim_webhook_deliveries(10, kLongLease);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].event, "item");

  const auto deliveries = store_->list_webhook_deliveries(first.id);
  EXPECT_EQ(deliveries[0].status, "delivered");
  EXPECT_EQ(deliveries[0].last_status_code, 204);
  EXPECT_GT(deliveries[0].delivered_ms, 0);
  EXPECT_EQ(deliveries[0].payload, "{\"type\":\"job.start\"}");
}

TEST_P(WebhookOutbox, RetriesWaitTheirTurnAndKeepTheFirstBody) {
  const Job job = subscribed_running_job(job_id(1), {"start"});
  append(job, "job_started");
  auto claimed = store_->claim_webhook_deliveries(1, kLongLease);
  ASSERT_EQ(claimed.size(), 1u);
  ASSERT_TRUE(store_->record_webhook_attempt(
      {claimed[0].id, 1, "pending", now_ms() + 3600000, 503, "busy", "first body"}));
  EXPECT_TRUE(store_->claim_webhook_deliveries(1, kLongLease).empty()) << "not due for an hour";

  ASSERT_TRUE(store_->record_webhook_attempt(
      {claimed[0].id, 1, "pending", 0, 0, "", "ignored"}));  // the same claim, due again now
  claimed = store_->claim_webhook_deliveries(1, kLongLease);
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].attempts, 2);
  EXPECT_EQ(claimed[0].payload, "first body");
  EXPECT_FALSE(store_->record_webhook_attempt({claimed[0].id, 1, "delivered", 0, 200, "", ""}))
      << "an earlier claim's record is refused (fencing)";
  ASSERT_TRUE(store_->record_webhook_attempt({claimed[0].id, 2, "failed", 0, 410, "gone", "x"}));
  const auto delivery = store_->list_webhook_deliveries(job.id).at(0);
  EXPECT_EQ(delivery.status, "failed");
  EXPECT_EQ(delivery.last_error, "gone");
  EXPECT_EQ(delivery.payload, "first body");
}

TEST_P(WebhookOutbox, LapsedClaimIsClaimedAgain) {
  const Job job = subscribed_running_job(job_id(1), {"start"});
  append(job, "job_started");
  ASSERT_EQ(store_->claim_webhook_deliveries(1, kExpiredLease).size(), 1u);
  const auto again = store_->claim_webhook_deliveries(1, kLongLease);
  ASSERT_EQ(again.size(), 1u) << "a sender that died does not keep it";
  EXPECT_EQ(again[0].attempts, 2);
}

TEST_P(WebhookOutbox, ApiKeyKeepsItsWebhookSecret) {
  ApiKeyRecord key;
  key.id = "abc123";
  key.name = "ci";
  key.user = "ci";
  key.scope = "user";
  key.secret_hash = std::string(64, 'b');
  key.webhook_secret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=";
  store_->create_api_key(key);
  const auto read = store_->get_api_key("abc123");
  ASSERT_TRUE(read);
  EXPECT_EQ(read->webhook_secret, key.webhook_secret);
  EXPECT_EQ(store_->find_api_key(key.secret_hash)->webhook_secret, key.webhook_secret);
  EXPECT_FALSE(store_->get_api_key("missing"));
}

TEST_P(WebhookOutbox, EventsAreReadById) {
  const Job job = subscribed_running_job(job_id(1), {"start"});
  const int64_t id = append(job, "job_started");
  const auto event = store_->get_event(id);
  ASSERT_TRUE(event);
  EXPECT_EQ(event->type, "job_started");
  EXPECT_EQ(event->job_id, job.id);
  EXPECT_FALSE(store_->get_event(id + 1000));
}

}  // namespace
}  // namespace df::store

// The Store contract, run against both stores: SQLite (a file) and PostgreSQL (a real server on
// loopback, a fresh database per test): idempotent creation under concurrency, listing, the
// database queue (claims, leases, fencing, retries), cancellation, events, steps, artifacts and
// models; then what only the PostgreSQL store has (its migrations, a server restart, libpq errors).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/ids.h"
#include "postgres_server.h"
#include "store/postgres_db.h"
#include "store/postgres_migrations.h"
#include "store/postgres_store.h"
#include "store/store.h"
#include "store_contract.h"
#include "test_support.h"

namespace df::store {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using namespace contract;  // NOLINT: the fixture and its makers

// Every field of a job, to compare two reads of it.
json snapshot(const Job& job) {
  json items = json::array();
  for (const auto& item : job.items) items.push_back(item_to_json(item));
  return {{"id", job.id},
          {"type", job.type},
          {"status", job_status_name(job.status)},
          {"spec", job.spec},
          {"idempotency_key", job.idempotency_key},
          {"request_hash", job.request_hash},
          {"priority", job.priority},
          {"attempts", job.attempts},
          {"max_attempts", job.max_attempts},
          {"progress", job.progress},
          {"items", items},
          {"error", job.error},
          {"worker_id", job.worker_id},
          {"lease_expires_ms", job.lease_expires_ms},
          {"run_after_ms", job.run_after_ms},
          {"cancel_requested", job.cancel_requested},
          {"created_ms", job.created_ms},
          {"updated_ms", job.updated_ms},
          {"started_ms", job.started_ms},
          {"finished_ms", job.finished_ms},
          {"schema_version", job.schema_version}};
}

std::vector<std::string> ids_of(const std::vector<Job>& jobs) {
  std::vector<std::string> ids;
  for (const auto& job : jobs) ids.push_back(job.id);
  return ids;
}

std::vector<std::string> types_of(const std::vector<Event>& events) {
  std::vector<std::string> types;
  for (const auto& event : events) types.push_back(event.type);
  return types;
}

using test::error_of;

INSTANTIATE_TEST_SUITE_P(Backends, StoreContract,
                         ::testing::Values(Backend{"Sqlite", new_sqlite_database},
                                           Backend{"Postgres", new_postgres_database}),
                         [](const auto& info) { return info.param.name; });

TEST_P(StoreContract, CreatedJobReadsBackQueuedWithItsQueuedEvent) {
  Job job = make_job(job_id(1), 7, "key-1");
  job.max_attempts = 5;
  job.schema_version = 1;
  const auto result = store_->create_job(job);
  EXPECT_TRUE(result.created);
  const auto stored = store_->get_job(job.id);
  ASSERT_TRUE(stored);
  for (const Job* read : {&result.job, &*stored}) {
    EXPECT_EQ(read->id, job.id);
    EXPECT_EQ(read->type, "generate");
    EXPECT_EQ(read->status, JobStatus::kQueued);
    EXPECT_EQ(read->spec, job.spec);
    EXPECT_EQ(read->idempotency_key, "key-1");
    EXPECT_EQ(read->request_hash, "hash-1");
    EXPECT_EQ(read->priority, 7);
    EXPECT_EQ(read->attempts, 0);
    EXPECT_EQ(read->max_attempts, 5);
    EXPECT_TRUE(read->items.empty());
    EXPECT_TRUE(read->error.is_null());
    EXPECT_EQ(read->worker_id, "");
    EXPECT_EQ(read->created_ms, job.created_ms);
    EXPECT_EQ(read->updated_ms, job.created_ms);
    EXPECT_EQ(read->started_ms, 0);
    EXPECT_EQ(read->finished_ms, 0);
    EXPECT_FALSE(read->cancel_requested);
  }
  const auto events = store_->events_after(job.id, 0, 10);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "job_queued");
  EXPECT_EQ(events[0].created_ms, job.created_ms);
  EXPECT_FALSE(store_->get_job("no-such-job"));
}

TEST_P(StoreContract, SameKeyAndBodyGiveTheSameJob) {
  const auto first = store_->create_job(make_job(job_id(1), 0, "key-1", "hash-1"));
  const auto again = store_->create_job(make_job(job_id(2), 0, "key-1", "hash-1"));
  EXPECT_TRUE(first.created);
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.job.id, job_id(1));
  EXPECT_FALSE(store_->get_job(job_id(2)));
  EXPECT_EQ(store_->events_after(job_id(1), 0, 10).size(), 1u) << "one job_queued event";
  EXPECT_EQ(store_->find_job_by_idempotency_key("key-1")->id, job_id(1));
  EXPECT_FALSE(store_->find_job_by_idempotency_key("key-2"));
}

TEST_P(StoreContract, SameKeyWithAnotherBodyIsAConflict) {
  store_->create_job(make_job(job_id(1), 0, "key-1", "hash-1"));
  const Error error =
      error_of([&] { store_->create_job(make_job(job_id(2), 0, "key-1", "hash-2")); });
  EXPECT_EQ(error.code(), ErrorCode::kConflict);
  EXPECT_EQ(error.details().at("job_id"), job_id(1));
  EXPECT_NE(std::string(error.what()).find("key-1"), std::string::npos);
  EXPECT_FALSE(store_->get_job(job_id(2)));
  EXPECT_EQ(store_->list_jobs({}).jobs.size(), 1u);
}

TEST_P(StoreContract, JobsWithoutKeyAreNeverDeduplicated) {
  EXPECT_TRUE(store_->create_job(make_job(job_id(1))).created);
  EXPECT_TRUE(store_->create_job(make_job(job_id(2))).created);
  EXPECT_EQ(store_->list_jobs({}).jobs.size(), 2u);
}

TEST_P(StoreContract, ConcurrentCreatesWithOneKeyMakeExactlyOneJob) {
  // Two stores on the same database, four threads each: like two API processes.
  const auto second = open_store(url_);
  std::atomic<int> created{0};
  std::vector<std::string> returned(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      Store& store = t % 2 == 0 ? *store_ : *second;
      const auto result = store.create_job(make_job(new_uuid_v7(), 0, "shared-key", "same-body"));
      if (result.created) created.fetch_add(1);
      returned[static_cast<size_t>(t)] = result.job.id;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(std::set<std::string>(returned.begin(), returned.end()).size(), 1u);
  const auto all = store_->list_jobs({});
  ASSERT_EQ(all.jobs.size(), 1u);
  EXPECT_EQ(all.jobs[0].id, returned[0]);
}

TEST_P(StoreContract, ListPagesNewestFirstWithoutOverlap) {
  for (int n = 1; n <= 7; ++n) store_->create_job(make_job(job_id(n)));
  std::vector<std::string> seen;
  std::vector<size_t> page_sizes;
  JobFilter filter;
  filter.limit = 3;
  for (int page = 0; page < 5; ++page) {
    const auto result = store_->list_jobs(filter);
    const auto ids = ids_of(result.jobs);
    seen.insert(seen.end(), ids.begin(), ids.end());
    page_sizes.push_back(ids.size());
    if (result.next_cursor.empty()) break;
    EXPECT_EQ(result.next_cursor, ids.back());
    filter.cursor = result.next_cursor;
  }
  EXPECT_EQ(page_sizes, (std::vector<size_t>{3, 3, 1}));
  EXPECT_EQ(seen, (std::vector<std::string>{job_id(7), job_id(6), job_id(5), job_id(4), job_id(3),
                                            job_id(2), job_id(1)}));
}

TEST_P(StoreContract, FullLastPageEndsWithAnEmptyCursor) {
  for (int n = 1; n <= 4; ++n) store_->create_job(make_job(job_id(n)));
  JobFilter filter;
  filter.limit = 2;
  const auto first = store_->list_jobs(filter);
  ASSERT_EQ(first.next_cursor, job_id(3));
  filter.cursor = first.next_cursor;
  const auto last = store_->list_jobs(filter);
  EXPECT_EQ(ids_of(last.jobs), (std::vector<std::string>{job_id(2), job_id(1)}));
  EXPECT_EQ(last.next_cursor, "");
}

TEST_P(StoreContract, PageOfNoJobsIsRefused) {
  store_->create_job(make_job(job_id(1)));
  JobFilter filter;
  filter.limit = 0;
  EXPECT_EQ(error_of([&] { store_->list_jobs(filter); }).code(), ErrorCode::kInvalidArgument);
}

TEST_P(StoreContract, ListFiltersByStatusAndCountsEveryStatus) {
  for (int n = 1; n <= 6; ++n) store_->create_job(make_job(job_id(n)));
  const Job running = *store_->claim_job("w1", kLongLease);  // job-001
  const Job done = *store_->claim_job("w1", kLongLease);     // job-002
  ASSERT_TRUE(store_->finish_job(lease_of(done), JobStatus::kSucceeded, nullptr,
                                 terminal_event(done.id, "succeeded")));
  store_->cancel_job(job_id(6));

  JobFilter filter;
  filter.status = JobStatus::kQueued;
  filter.limit = 2;
  auto page = store_->list_jobs(filter);
  EXPECT_EQ(ids_of(page.jobs), (std::vector<std::string>{job_id(5), job_id(4)}));
  filter.cursor = page.next_cursor;
  page = store_->list_jobs(filter);
  EXPECT_EQ(ids_of(page.jobs), (std::vector<std::string>{job_id(3)}));
  EXPECT_EQ(page.next_cursor, "");

  filter = {};
  filter.status = JobStatus::kRunning;
  EXPECT_EQ(ids_of(store_->list_jobs(filter).jobs), (std::vector<std::string>{running.id}));
  filter.status = JobStatus::kFailed;
  EXPECT_TRUE(store_->list_jobs(filter).jobs.empty());

  const auto counts = store_->count_jobs_by_status();
  EXPECT_EQ(counts,
            (std::map<std::string, int64_t>{
                {"queued", 3}, {"running", 1}, {"succeeded", 1}, {"failed", 0}, {"canceled", 1}}));
  EXPECT_EQ(store_->count_jobs(JobStatus::kQueued), 3);
  EXPECT_EQ(store_->count_jobs(JobStatus::kRunning), 1);
  EXPECT_EQ(store_->count_jobs(JobStatus::kFailed), 0);
}

TEST_P(StoreContract, ClaimTakesHighestPriorityThenOldest) {
  store_->create_job(make_job(job_id(1), -1));
  store_->create_job(make_job(job_id(2), 0));
  store_->create_job(make_job(job_id(3), 5));
  store_->create_job(make_job(job_id(4), 5));
  store_->create_job(make_job(job_id(5), 0));
  std::vector<std::string> order;
  while (auto job = store_->claim_job("w1", kLongLease)) order.push_back(job->id);
  EXPECT_EQ(order,
            (std::vector<std::string>{job_id(3), job_id(4), job_id(2), job_id(5), job_id(1)}));
}

TEST_P(StoreContract, ModelDownloadsAreClaimedOnlyByTheDownloadClaim) {
  Job download = make_job(job_id(1), /*priority=*/10);
  download.type = kModelDownloadJobType;
  store_->create_job(download);
  store_->create_job(make_job(job_id(2)));
  EXPECT_EQ(store_->claim_job("gpu-worker", kLongLease)->id, job_id(2)) << "a worker skips it";
  EXPECT_FALSE(store_->claim_job("gpu-worker", kLongLease));
  const auto dispatchable = store_->dispatchable_jobs("", 10);
  for (const auto& job : dispatchable) EXPECT_NE(job.job_id, job_id(1)) << "no queue dispatches it";
  const auto claimed = store_->claim_model_download("downloads", kLongLease);
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->id, job_id(1));
  EXPECT_FALSE(store_->claim_model_download("downloads", kLongLease));
  ASSERT_TRUE(store_->finish_job(lease_of(*claimed), JobStatus::kSucceeded, nullptr,
                                 terminal_event(claimed->id, "succeeded")));
  for (const auto& job : store_->history(-1)) EXPECT_NE(job.id, job_id(1)) << "not ComfyUI history";
}

TEST_P(StoreContract, ClaimMarksTheJobRunningUnderTheWorker) {
  store_->create_job(make_job(job_id(1)));
  const int64_t before = now_ms();
  const auto claimed = store_->claim_job("worker-a", 30000);
  const int64_t after = now_ms();
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->status, JobStatus::kRunning);
  EXPECT_EQ(claimed->worker_id, "worker-a");
  EXPECT_EQ(claimed->attempts, 1);
  EXPECT_GE(claimed->lease_expires_ms, before + 30000);
  EXPECT_LE(claimed->lease_expires_ms, after + 30000);
  EXPECT_GE(claimed->started_ms, before);
  EXPECT_LE(claimed->started_ms, after);
  EXPECT_EQ(snapshot(*store_->get_job(job_id(1))), snapshot(*claimed));
  EXPECT_FALSE(store_->claim_job("worker-b", 30000)) << "a live lease is not claimable";
}

TEST_P(StoreContract, ClaimByIdTakesThatJobOnlyWhileItIsClaimable) {
  store_->create_job(make_job(job_id(1), 5));
  store_->create_job(make_job(job_id(2)));
  const auto claimed = store_->claim_job_by_id(job_id(2), "worker-a", kLongLease);
  ASSERT_TRUE(claimed) << "the queue named this job, whatever its priority";
  EXPECT_EQ(claimed->id, job_id(2));
  EXPECT_EQ(claimed->status, JobStatus::kRunning);
  EXPECT_EQ(claimed->worker_id, "worker-a");
  EXPECT_EQ(claimed->attempts, 1);
  EXPECT_FALSE(store_->claim_job_by_id(job_id(2), "worker-b", kLongLease)) << "a live lease";
  EXPECT_FALSE(store_->claim_job_by_id("job-unknown", "worker-b", kLongLease));

  ASSERT_TRUE(store_->finish_job(lease_of(*claimed), JobStatus::kSucceeded, nullptr,
                                 terminal_event(job_id(2), "succeeded")));
  EXPECT_FALSE(store_->claim_job_by_id(job_id(2), "worker-b", kLongLease)) << "a finished job";

  const auto expiring = store_->claim_job_by_id(job_id(1), "worker-a", kExpiredLease);
  ASSERT_TRUE(expiring);
  const auto taken_over = store_->claim_job_by_id(job_id(1), "worker-b", kLongLease);
  ASSERT_TRUE(taken_over) << "an expired lease is claimable";
  EXPECT_EQ(taken_over->attempts, 2);
  EXPECT_EQ(taken_over->worker_id, "worker-b");
}

TEST_P(StoreContract, ClaimByIdWaitsForTheRunAfterTime) {
  const Job claimed = create_and_claim(job_id(1));
  ASSERT_TRUE(store_->requeue_job(lease_of(claimed), now_ms() + 60000, nullptr, true));
  EXPECT_FALSE(store_->claim_job_by_id(job_id(1), "w1", kLongLease));
}

TEST_P(StoreContract, DispatchableJobsAreQueuedOrLeaseExpiredPagedById) {
  for (int n = 1; n <= 5; ++n) store_->create_job(make_job(job_id(n), n == 3 ? 7 : 0));
  ASSERT_TRUE(store_->claim_job_by_id(job_id(1), "w1", kLongLease));  // running: not listed
  ASSERT_TRUE(store_->claim_job_by_id(job_id(2), "w1", kExpiredLease));  // lease gone: listed
  const Job finished = *store_->claim_job_by_id(job_id(4), "w1", kLongLease);
  ASSERT_TRUE(store_->finish_job(lease_of(finished), JobStatus::kFailed, nullptr,
                                 terminal_event(job_id(4), "failed")));
  const Job delayed = *store_->claim_job_by_id(job_id(5), "w1", kLongLease);
  const int64_t due = now_ms() + 60000;
  ASSERT_TRUE(store_->requeue_job(lease_of(delayed), due, nullptr, true));

  const auto first = store_->dispatchable_jobs("", 2);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].job_id, job_id(2));
  EXPECT_EQ(first[1].job_id, job_id(3));
  EXPECT_EQ(first[1].priority, 7);
  const auto rest = store_->dispatchable_jobs(first.back().job_id, 2);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].job_id, job_id(5));
  EXPECT_EQ(rest[0].run_after_ms, due) << "a delayed retry is listed with its due time";
  EXPECT_TRUE(store_->dispatchable_jobs(rest[0].job_id, 2).empty());
}

TEST_P(StoreContract, RequeuedJobWaitsForItsRunAfterTime) {
  const Job claimed = create_and_claim(job_id(1));
  const json error = {{"code", "runner_crashed"}, {"message", "boom"}, {"details", json::object()}};
  ASSERT_TRUE(store_->requeue_job(lease_of(claimed), now_ms() + 60000, error, true));
  const auto waiting = store_->get_job(job_id(1));
  EXPECT_EQ(waiting->status, JobStatus::kQueued);
  EXPECT_EQ(waiting->error, error);
  EXPECT_EQ(waiting->worker_id, "");
  EXPECT_EQ(waiting->lease_expires_ms, 0);
  EXPECT_EQ(waiting->attempts, 1);
  EXPECT_GT(waiting->run_after_ms, now_ms());
  EXPECT_FALSE(store_->claim_job("w1", kLongLease)) << "claimed before its run_after time";

  store_->create_job(make_job(job_id(2), -50));
  const auto other = store_->claim_job("w1", kLongLease);
  ASSERT_TRUE(other);
  EXPECT_EQ(other->id, job_id(2)) << "a due job of lower priority goes first";
}

TEST_P(StoreContract, DueRequeuedJobIsClaimedAgainWithTheNextAttempt) {
  const Job claimed = create_and_claim(job_id(1));
  ASSERT_TRUE(store_->requeue_job(lease_of(claimed), now_ms() - 1, nullptr, true));
  const auto again = store_->claim_job("w2", kLongLease);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->id, job_id(1));
  EXPECT_EQ(again->attempts, 2);
  EXPECT_EQ(again->worker_id, "w2");
  EXPECT_EQ(again->started_ms, claimed.started_ms) << "the first start is kept";
  EXPECT_TRUE(again->error.is_null());
}

TEST_P(StoreContract, HandingBackGrantsOneMoreAttempt) {
  const Job claimed = create_and_claim(job_id(1));
  ASSERT_TRUE(store_->requeue_job(lease_of(claimed), now_ms() - 1, nullptr, false));
  const auto again = store_->claim_job("w2", kLongLease);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->attempts, 2);
  EXPECT_EQ(again->max_attempts, claimed.max_attempts + 1) << "the shutdown did not use up a retry";
}

TEST_P(StoreContract, ExpiredLeaseIsReclaimedWithTheNextAttempt) {
  const Job lost = create_and_claim(job_id(1), "w1", kExpiredLease);
  const auto reclaimed = store_->claim_job("w2", kLongLease);
  ASSERT_TRUE(reclaimed);
  EXPECT_EQ(reclaimed->id, lost.id);
  EXPECT_EQ(reclaimed->attempts, 2);
  EXPECT_EQ(reclaimed->worker_id, "w2");
  EXPECT_EQ(reclaimed->status, JobStatus::kRunning);
}

TEST_P(StoreContract, RenewedLeaseIsNotReclaimed) {
  const Job claimed = create_and_claim(job_id(1), "w1", kExpiredLease);
  ASSERT_TRUE(store_->renew_lease(lease_of(claimed), kLongLease));
  EXPECT_GT(store_->get_job(job_id(1))->lease_expires_ms, now_ms());
  EXPECT_FALSE(store_->claim_job("w2", kLongLease));
}

TEST_P(StoreContract, StaleLeaseCannotWriteAnything) {
  const Job stale_claim = create_and_claim(job_id(1), "w1", kExpiredLease);
  const Job current_claim = *store_->claim_job("w2", kLongLease);
  const Job before = *store_->get_job(job_id(1));
  const auto events_before = store_->events_after(job_id(1), 0, 100);

  const std::vector<Lease> refused = {lease_of(stale_claim),
                                      {job_id(1), "w2", stale_claim.attempts},
                                      {job_id(1), "w1", current_claim.attempts},
                                      {"other-job", "w2", current_claim.attempts}};
  JobItem item;
  item.index = 0;
  item.seed = 9;
  item.status = "succeeded";
  for (const Lease& lease : refused) {
    SCOPED_TRACE(lease.worker_id + " attempt " + std::to_string(lease.attempt));
    EXPECT_FALSE(store_->save_items(lease, {item}, 1.0));
    const Event progress = make_event(job_id(1), "progress", 0);
    EXPECT_EQ(store_->append_event(progress, &lease), 0);
    EXPECT_FALSE(store_->put_artifact(lease, make_artifact(job_id(1), 0, "stale.png")));
    EXPECT_FALSE(store_->finish_job(lease, JobStatus::kSucceeded, nullptr,
                                    terminal_event(job_id(1), "succeeded")));
    EXPECT_FALSE(store_->renew_lease(lease, kLongLease * 10));
    EXPECT_FALSE(store_->requeue_job(lease, 0, nullptr, true));
    EXPECT_EQ(store_->start_step(lease, Step{}), 0);
  }
  EXPECT_EQ(snapshot(*store_->get_job(job_id(1))), snapshot(before));
  EXPECT_EQ(store_->events_after(job_id(1), 0, 100).size(), events_before.size());
  EXPECT_TRUE(store_->list_artifacts(job_id(1)).empty());
  EXPECT_TRUE(store_->list_steps(job_id(1)).empty());

  const Lease current = lease_of(current_claim);
  EXPECT_TRUE(store_->save_items(current, {item}, 1.0));
  EXPECT_GT(store_->append_event(make_event(job_id(1), "progress", 0), &current), 0);
  EXPECT_TRUE(store_->put_artifact(current, make_artifact(job_id(1), 0, "current.png")));
  EXPECT_TRUE(store_->renew_lease(current, kLongLease));
}

TEST_P(StoreContract, LeaseOfAnotherJobCannotWriteIntoThisJob) {
  const Job target = create_and_claim(job_id(1));
  const Job other = create_and_claim(job_id(2));
  const Lease wrong = lease_of(other);
  EXPECT_EQ(store_->append_event(make_event(target.id, "log"), &wrong), 0);
  EXPECT_FALSE(store_->put_artifact(wrong, make_artifact(target.id, 0, "k.png")));
  EXPECT_FALSE(store_->finish_job(wrong, JobStatus::kSucceeded, nullptr,
                                  terminal_event(target.id, "succeeded")));
  EXPECT_EQ(store_->events_after(target.id, 0, 100).size(), 1u);
  EXPECT_EQ(store_->events_after(other.id, 0, 100).size(), 1u);
  EXPECT_TRUE(store_->list_artifacts(target.id).empty());
  EXPECT_TRUE(store_->list_artifacts(other.id).empty());
  EXPECT_EQ(store_->get_job(other.id)->status, JobStatus::kRunning);
}

TEST_P(StoreContract, FinishedJobRefusesEveryFurtherWrite) {
  const Job claimed = create_and_claim(job_id(1));
  const Lease lease = lease_of(claimed);
  ASSERT_TRUE(store_->finish_job(lease, JobStatus::kSucceeded, nullptr,
                                 terminal_event(job_id(1), "succeeded")));
  EXPECT_FALSE(store_->finish_job(lease, JobStatus::kFailed, {{"code", "internal"}},
                                  terminal_event(job_id(1), "failed")));
  EXPECT_FALSE(store_->save_items(lease, {}, 0.5));
  EXPECT_FALSE(store_->renew_lease(lease, kLongLease));
  EXPECT_FALSE(store_->requeue_job(lease, 0, nullptr, true));
  EXPECT_EQ(store_->append_event(make_event(job_id(1), "log"), &lease), 0);
  EXPECT_EQ(store_->get_job(job_id(1))->status, JobStatus::kSucceeded);
  EXPECT_EQ(types_of(store_->events_after(job_id(1), 0, 100)),
            (std::vector<std::string>{"job_queued", "job_finished"}));
  EXPECT_FALSE(store_->claim_job("w2", kLongLease)) << "a finished job is never claimed";
}

TEST_P(StoreContract, FinishJobEndsTheJobAndAppendsItsTerminalEvent) {
  const Job claimed = create_and_claim(job_id(1));
  ASSERT_TRUE(store_->save_items(lease_of(claimed), {}, 0.4));
  const int64_t before = now_ms();
  Event terminal = terminal_event(job_id(1), "succeeded");
  terminal.plain = "Your images are ready.";
  ASSERT_TRUE(store_->finish_job(lease_of(claimed), JobStatus::kSucceeded, nullptr, terminal));
  const Job finished = *store_->get_job(job_id(1));
  EXPECT_EQ(finished.status, JobStatus::kSucceeded);
  EXPECT_DOUBLE_EQ(finished.progress, 1.0);
  EXPECT_EQ(finished.lease_expires_ms, 0);
  EXPECT_GE(finished.finished_ms, before);
  EXPECT_TRUE(finished.error.is_null());
  const auto events = store_->events_after(job_id(1), 0, 100);
  ASSERT_EQ(types_of(events), (std::vector<std::string>{"job_queued", "job_finished"}));
  EXPECT_EQ(events[1].plain, "Your images are ready.");
  EXPECT_EQ(events[1].data, terminal.data);
}

TEST_P(StoreContract, FailedJobKeepsItsErrorAndProgress) {
  const Job claimed = create_and_claim(job_id(1));
  ASSERT_TRUE(store_->save_items(lease_of(claimed), {}, 0.5));
  const json error = {
      {"code", "oom"}, {"message", "out of memory"}, {"details", {{"peak_bytes", 7}}}};
  ASSERT_TRUE(store_->finish_job(lease_of(claimed), JobStatus::kFailed, error,
                                 terminal_event(job_id(1), "failed")));
  const Job failed = *store_->get_job(job_id(1));
  EXPECT_EQ(failed.status, JobStatus::kFailed);
  EXPECT_EQ(failed.error, error);
  EXPECT_DOUBLE_EQ(failed.progress, 0.5);
}

TEST_P(StoreContract, CancelQueuedJobEndsItAtOnce) {
  store_->create_job(make_job(job_id(1)));
  EXPECT_EQ(store_->cancel_job(job_id(1)), CancelOutcome::kCanceled);
  const Job canceled = *store_->get_job(job_id(1));
  EXPECT_EQ(canceled.status, JobStatus::kCanceled);
  EXPECT_TRUE(canceled.cancel_requested);
  EXPECT_EQ(canceled.error.at("code"), "canceled");
  EXPECT_GT(canceled.finished_ms, 0);
  const auto events = store_->events_after(job_id(1), 0, 100);
  ASSERT_EQ(types_of(events), (std::vector<std::string>{"job_queued", "job_finished"}));
  EXPECT_EQ(events[1].code, "canceled");
  EXPECT_EQ(events[1].data.at("status"), "canceled");
  EXPECT_FALSE(store_->claim_job("w1", kLongLease));
}

TEST_P(StoreContract, CancelRunningJobAsksItsWorkerToStop) {
  const Job claimed = create_and_claim(job_id(1));
  EXPECT_EQ(store_->cancel_job(job_id(1)), CancelOutcome::kRequested);
  const Job marked = *store_->get_job(job_id(1));
  EXPECT_EQ(marked.status, JobStatus::kRunning);
  EXPECT_TRUE(marked.cancel_requested);
  EXPECT_EQ(types_of(store_->events_after(job_id(1), 0, 100)),
            (std::vector<std::string>{"job_queued"}));
  EXPECT_TRUE(store_->finish_job(lease_of(claimed), JobStatus::kCanceled,
                                 {{"code", "canceled"}, {"message", "canceled while running"}},
                                 terminal_event(job_id(1), "canceled")));
  EXPECT_EQ(store_->get_job(job_id(1))->status, JobStatus::kCanceled);
}

TEST_P(StoreContract, CancelFinishedJobChangesNothing) {
  const Job claimed = create_and_claim(job_id(1));
  ASSERT_TRUE(store_->finish_job(lease_of(claimed), JobStatus::kSucceeded, nullptr,
                                 terminal_event(job_id(1), "succeeded")));
  const Job before = *store_->get_job(job_id(1));
  EXPECT_EQ(store_->cancel_job(job_id(1)), CancelOutcome::kAlreadyFinished);
  EXPECT_EQ(snapshot(*store_->get_job(job_id(1))), snapshot(before));
  EXPECT_EQ(store_->events_after(job_id(1), 0, 100).size(), 2u);
  EXPECT_EQ(store_->cancel_job(job_id(1)), CancelOutcome::kAlreadyFinished);
}

TEST_P(StoreContract, CancelUnknownJobIsNotFound) {
  EXPECT_EQ(error_of([&] { store_->cancel_job("nope"); }).code(), ErrorCode::kNotFound);
}

TEST_P(StoreContract, EventsComeBackInOrderPerJobFromAnId) {
  store_->create_job(make_job(job_id(1)));
  store_->create_job(make_job(job_id(2)));
  std::vector<int64_t> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(store_->append_event(make_event(job_id(1), "log", i), nullptr));
    store_->append_event(make_event(job_id(2), "log"), nullptr);
  }
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::set<int64_t>(ids.begin(), ids.end()).size(), ids.size());

  const auto all = store_->events_after(job_id(1), 0, 100);
  ASSERT_EQ(all.size(), 6u);
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_LT(all[i - 1].id, all[i].id);
    EXPECT_EQ(all[i].job_id, job_id(1));
  }
  const auto later = store_->events_after(job_id(1), ids[2], 100);
  ASSERT_EQ(later.size(), 2u);
  EXPECT_EQ(later[0].id, ids[3]);
  EXPECT_EQ(later[1].id, ids[4]);
  const auto limited = store_->events_after(job_id(1), 0, 2);
  ASSERT_EQ(limited.size(), 2u);
  EXPECT_EQ(limited[1].id, ids[0]);
  EXPECT_TRUE(store_->events_after(job_id(1), ids[4], 100).empty());
  EXPECT_TRUE(store_->events_after("unknown", 0, 100).empty());
}

TEST_P(StoreContract, EventFieldsRoundTrip) {
  store_->create_job(make_job(job_id(1)));
  Event event = make_event(job_id(1), "error", 0);
  event.code = "oom";
  event.created_ms = 1700000000123;
  event.data = {{"details", {{"peak_bytes", 123}}}, {"progress", 0.5}};
  const int64_t id = store_->append_event(event, nullptr);
  Event plain = make_event(job_id(1), "log");
  plain.data = json::object();
  store_->append_event(plain, nullptr);
  const auto events = store_->events_after(job_id(1), id - 1, 10);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].id, id);
  EXPECT_EQ(events[0].job_id, job_id(1));
  EXPECT_EQ(events[0].type, "error");
  EXPECT_EQ(events[0].code, "oom");
  EXPECT_EQ(events[0].item_index, 0);
  EXPECT_EQ(events[0].message, "error message");
  EXPECT_EQ(events[0].plain, "error in plain words");
  EXPECT_EQ(events[0].data, event.data);
  EXPECT_EQ(events[0].created_ms, 1700000000123);
  EXPECT_EQ(events[1].item_index, std::nullopt);
  EXPECT_EQ(events[1].code, "");
  EXPECT_EQ(events[1].data, json::object());
  EXPECT_GT(events[1].created_ms, 0) << "stamped when not given";
}

TEST_P(StoreContract, ItemsRoundTripWithSeedsAboveInt64) {
  const Job claimed = create_and_claim(job_id(1));
  std::vector<JobItem> items(2);
  items[0].index = 0;
  items[0].seed = std::numeric_limits<uint64_t>::max();
  items[0].status = "succeeded";
  items[0].step = 20;
  items[0].total_steps = 20;
  items[0].progress = 1;
  items[1].index = 1;
  items[1].seed = (uint64_t{1} << 63) + 1;
  items[1].status = "running";
  items[1].step = 5;
  items[1].total_steps = 20;
  items[1].progress = 0.25;
  ASSERT_TRUE(store_->save_items(lease_of(claimed), items, 0.625));
  const Job saved = *store_->get_job(job_id(1));
  EXPECT_DOUBLE_EQ(saved.progress, 0.625);
  ASSERT_EQ(saved.items.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(saved.items[i].index, items[i].index);
    EXPECT_EQ(saved.items[i].seed, items[i].seed);
    EXPECT_EQ(saved.items[i].status, items[i].status);
    EXPECT_EQ(saved.items[i].step, items[i].step);
    EXPECT_EQ(saved.items[i].total_steps, items[i].total_steps);
    EXPECT_DOUBLE_EQ(saved.items[i].progress, items[i].progress);
  }
}

TEST_P(StoreContract, StepsRoundTrip) {
  const Job claimed = create_and_claim(job_id(1), "worker-7");
  Step step;
  step.runner = "/usr/bin/dreamforge-runner";
  step.device = "cpu";
  step.started_ms = 1700000000000;
  step.gpu_mem_used_before = 1000;
  step.memory_kind = "process_rss";
  step.id = store_->start_step(lease_of(claimed), step);
  ASSERT_GT(step.id, 0);
  auto steps = store_->list_steps(job_id(1));
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0].status, "running");
  EXPECT_EQ(steps[0].attempt, 1);
  EXPECT_EQ(steps[0].worker_id, "worker-7");

  step.status = "failed";
  step.device = "cuda:0";
  step.finished_ms = 1700000004500;
  step.gpu_mem_used_after = 2000;
  step.peak_gpu_mem_used = (int64_t{1} << 40);
  step.memory_kind = "cuda";
  step.error = {{"code", "oom"}, {"message", "out of memory"}};
  store_->finish_step(step);
  steps = store_->list_steps(job_id(1));
  ASSERT_EQ(steps.size(), 1u);
  const Step& read = steps[0];
  EXPECT_EQ(read.id, step.id);
  EXPECT_EQ(read.job_id, job_id(1));
  EXPECT_EQ(read.runner, step.runner);
  EXPECT_EQ(read.device, "cuda:0");
  EXPECT_EQ(read.status, "failed");
  EXPECT_EQ(read.started_ms, step.started_ms);
  EXPECT_EQ(read.finished_ms, step.finished_ms);
  EXPECT_EQ(read.gpu_mem_used_before, 1000);
  EXPECT_EQ(read.gpu_mem_used_after, 2000);
  EXPECT_EQ(read.peak_gpu_mem_used, int64_t{1} << 40);
  EXPECT_EQ(read.memory_kind, "cuda");
  EXPECT_EQ(read.error, step.error);
}

TEST_P(StoreContract, RunTimingsAreTheModelsRecentSuccessfulFirstAttempts) {
  const auto run = [&](int n, const std::string& model, int width, const std::string& status,
                       int64_t started, int64_t duration) {
    Job job = make_job(job_id(n));
    job.spec = {{"model_id", model}, {"width", width}, {"height", 64}, {"steps", 10}, {"count", 3}};
    store_->create_job(job);
    const Job claimed = *store_->claim_job("w1", kLongLease);
    Step step;
    step.started_ms = started;
    step.id = store_->start_step(lease_of(claimed), step);
    step.status = status;
    step.finished_ms = started + duration;
    store_->finish_step(step);
  };
  run(1, "tiny", 64, "succeeded", 1000, 900);
  run(2, "other", 64, "succeeded", 2000, 5000);
  run(3, "tiny", 128, "failed", 3000, 100);
  run(4, "tiny", 128, "succeeded", 4000, 2500);
  const auto timings = store_->recent_run_timings("tiny", 10);
  ASSERT_EQ(timings.size(), 2u);
  EXPECT_EQ(timings[0].width, 128) << "newest first";
  EXPECT_EQ(timings[0].duration_ms, 2500);
  EXPECT_EQ(timings[1].width, 64);
  EXPECT_EQ(timings[1].height, 64);
  EXPECT_EQ(timings[1].steps, 10);
  EXPECT_EQ(timings[1].items, 3);
  EXPECT_EQ(timings[1].model_id, "tiny");
  EXPECT_EQ(store_->recent_run_timings("tiny", 1).size(), 1u);
  EXPECT_TRUE(store_->recent_run_timings("nope", 10).empty());
}

TEST_P(StoreContract, ModelsRoundTripAndKeepTheirCreationTime) {
  Model model;
  model.id = "base@v1";
  model.name = "Base";
  model.family = "sd1";
  model.local_path = "/models/checkpoints/base@v1";
  model.files = {{"unet/model.safetensors", 42, "ab12"}};
  model.created_ms = 1000;
  store_->upsert_model(model);
  model.enabled = false;
  model.created_ms = 0;
  store_->upsert_model(model);
  const auto read = store_->get_model("base@v1");
  ASSERT_TRUE(read);
  EXPECT_FALSE(read->enabled);
  EXPECT_EQ(read->created_ms, 1000);
  EXPECT_GT(read->updated_ms, 1000);
  EXPECT_EQ(read->files.at(0).size, 42);
  EXPECT_EQ(store_->list_models().size(), 1u);
  EXPECT_TRUE(store_->delete_model("base@v1"));
  EXPECT_FALSE(store_->delete_model("base@v1"));
  EXPECT_FALSE(store_->get_model("base@v1"));
}

TEST_P(StoreContract, ArtifactsRoundTripWithSeedsAboveInt64) {
  const Job claimed = create_and_claim(job_id(1));
  Artifact second = make_artifact(job_id(1), 1, "b.png");
  second.seed = std::numeric_limits<uint64_t>::max() - 4;
  Artifact first = make_artifact(job_id(1), 0, "a.png");
  first.seed = (uint64_t{1} << 63) + 11;
  first.metadata = {{"prompt", "桜 🌸"}, {"steps", 20}};
  ASSERT_TRUE(store_->put_artifact(lease_of(claimed), second));
  ASSERT_TRUE(store_->put_artifact(lease_of(claimed), first));
  const auto artifacts = store_->list_artifacts(job_id(1));
  ASSERT_EQ(artifacts.size(), 2u);
  EXPECT_EQ(artifacts[0].key, "a.png") << "ordered by item";
  EXPECT_EQ(artifacts[0].seed, first.seed);
  EXPECT_EQ(artifacts[0].metadata, first.metadata);
  EXPECT_EQ(artifacts[0].attempt, 1);
  EXPECT_EQ(artifacts[0].content_type, "image/png");
  EXPECT_EQ(artifacts[0].size, 1234);
  EXPECT_EQ(artifacts[0].sha256, first.sha256);
  EXPECT_EQ(artifacts[0].width, 64);
  EXPECT_EQ(artifacts[0].height, 96);
  EXPECT_EQ(artifacts[0].created_ms, first.created_ms);
  EXPECT_GT(artifacts[0].id, 0);
  EXPECT_EQ(artifacts[1].seed, second.seed);
  EXPECT_EQ(artifacts[1].item_index, 1);
  EXPECT_TRUE(store_->list_artifacts(job_id(2)).empty());
}

TEST_P(StoreContract, OutputArtifactsAreFoundByTheirFileNameNewestFirst) {
  const Job claimed = create_and_claim(job_id(1));
  Artifact older = make_artifact(job_id(1), 0, "older.png");
  older.metadata = {{"filename", "df_00001_.png"}, {"subfolder", ""}, {"node", "9"}};
  Artifact newer = make_artifact(job_id(1), 1, "newer.png");
  newer.metadata = older.metadata;
  newer.created_ms = older.created_ms + 1000;
  Artifact elsewhere = make_artifact(job_id(1), 2, "elsewhere.png");
  elsewhere.metadata = {{"filename", "df_00001_.png"}, {"subfolder", "portraits"}};
  for (const Artifact& artifact : {older, newer, elsewhere}) {
    ASSERT_TRUE(store_->put_artifact(lease_of(claimed), artifact));
  }
  EXPECT_EQ(store_->find_output_artifact("", "df_00001_.png")->key, "newer.png");
  EXPECT_EQ(store_->find_output_artifact("portraits", "df_00001_.png")->key, "elsewhere.png");
  EXPECT_FALSE(store_->find_output_artifact("", "df_00002_.png"));
  EXPECT_FALSE(store_->find_output_artifact("landscapes", "df_00001_.png"));
}

TEST_P(StoreContract, RerunReplacesItsArtifactInsteadOfAddingATwin) {
  const Job first_claim = create_and_claim(job_id(1), "w1", kExpiredLease);
  ASSERT_TRUE(store_->put_artifact(lease_of(first_claim), make_artifact(job_id(1), 0, "k.png")));
  const Job second_claim = *store_->claim_job("w2", kLongLease);
  Artifact rerun = make_artifact(job_id(1), 0, "k.png");
  rerun.size = 999;
  rerun.sha256 = std::string(64, 'b');
  ASSERT_TRUE(store_->put_artifact(lease_of(second_claim), rerun));
  const auto artifacts = store_->list_artifacts(job_id(1));
  ASSERT_EQ(artifacts.size(), 1u);
  EXPECT_EQ(artifacts[0].attempt, 2);
  EXPECT_EQ(artifacts[0].size, 999);
  EXPECT_EQ(artifacts[0].sha256, rerun.sha256);
}

TEST_P(StoreContract, ReopeningKeepsData) {
  const Job claimed = create_and_claim(job_id(1));
  ASSERT_TRUE(store_->put_artifact(lease_of(claimed), make_artifact(job_id(1), 0, "k.png")));
  store_->create_job(make_job(job_id(2), 0, "key-2"));
  reopen();
  reopen();
  EXPECT_EQ(store_->get_job(job_id(1))->status, JobStatus::kRunning);
  EXPECT_EQ(store_->list_artifacts(job_id(1)).size(), 1u);
  EXPECT_FALSE(store_->create_job(make_job(job_id(3), 0, "key-2")).created);
  EXPECT_EQ(store_->list_jobs({}).jobs.size(), 2u);
}

TEST_P(StoreContract, HistoryListsFinishedJobsOldestFirstAndClearingOnlyHidesThem) {
  for (int n = 1; n <= 3; ++n) {
    const Job claimed = create_and_claim(job_id(n));
    ASSERT_TRUE(store_->finish_job(lease_of(claimed), JobStatus::kSucceeded, nullptr,
                                   terminal_event(claimed.id, "succeeded")));
  }
  store_->create_job(make_job(job_id(4)));  // still queued: not history
  auto ids = [](const std::vector<Job>& jobs) {
    std::vector<std::string> out;
    for (const auto& job : jobs) out.push_back(job.id);
    return out;
  };
  EXPECT_EQ(ids(store_->history(-1)), (std::vector<std::string>{job_id(1), job_id(2), job_id(3)}));
  EXPECT_EQ(ids(store_->history(2)), (std::vector<std::string>{job_id(2), job_id(3)}));
  store_->clear_history({job_id(2)});
  EXPECT_EQ(ids(store_->history(-1)), (std::vector<std::string>{job_id(1), job_id(3)}));
  store_->clear_history({});
  EXPECT_TRUE(store_->history(-1).empty());
  EXPECT_EQ(store_->get_job(job_id(2))->status, JobStatus::kSucceeded) << "the job itself stays";
}

TEST_P(StoreContract, ClientChosenIdsDoNotChangeQueueOrListOrder) {
  Job first = make_job("zzz-client-chosen");
  first.created_ms = 1000;
  Job second = make_job("aaa-client-chosen");
  second.created_ms = 2000;
  store_->create_job(first);
  store_->create_job(second);
  EXPECT_EQ(store_->claim_job("w", 30000)->id, "zzz-client-chosen") << "the older job runs first";
  store::JobFilter page;
  page.limit = 1;
  const auto newest = store_->list_jobs(page);
  ASSERT_EQ(newest.jobs.size(), 1u);
  EXPECT_EQ(newest.jobs[0].id, "aaa-client-chosen");
  page.cursor = newest.next_cursor;
  EXPECT_EQ(store_->list_jobs(page).jobs.at(0).id, "zzz-client-chosen");
}

TEST_P(StoreContract, ConcurrentClaimsGiveEveryJobToExactlyOneWorker) {
  // Two stores on the same database, four workers each: like two worker processes.
  constexpr int kJobs = 40;
  for (int n = 1; n <= kJobs; ++n) store_->create_job(make_job(job_id(n)));
  const auto second = open_store(url_);
  std::mutex mutex;
  std::multiset<std::string> claimed;
  std::vector<std::thread> workers;
  for (int t = 0; t < 8; ++t) {
    workers.emplace_back([&, t] {
      Store& store = t % 2 == 0 ? *store_ : *second;
      while (auto job = store.claim_job("w" + std::to_string(t), kLongLease)) {
        std::lock_guard lock(mutex);
        claimed.insert(job->id);
      }
    });
  }
  for (auto& worker : workers) worker.join();
  EXPECT_EQ(claimed.size(), static_cast<size_t>(kJobs));
  EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()).size(),
            static_cast<size_t>(kJobs));
  EXPECT_EQ(store_->count_jobs(JobStatus::kRunning), kJobs);
}

TEST_P(StoreContract, StoresOpeningANewDatabaseTogetherAllWork) {
  // Like several service processes starting at once on an empty database: one migrates.
  const std::string url = new_database("fresh");
  std::vector<std::unique_ptr<Store>> stores(4);
  std::vector<std::thread> threads;
  for (size_t s = 0; s < stores.size(); ++s) {
    threads.emplace_back([&, s] { stores[s] = open_store(url); });
  }
  for (auto& thread : threads) thread.join();
  for (size_t s = 0; s < stores.size(); ++s) {
    ASSERT_NE(stores[s], nullptr);
    EXPECT_TRUE(stores[s]->create_job(make_job(job_id(static_cast<int>(s)))).created);
  }
  EXPECT_EQ(stores[0]->list_jobs({}).jobs.size(), stores.size());
}

TEST_P(StoreContract, TheAuditLogListsNewestFirst) {
  EXPECT_TRUE(store_->list_audit(10).empty());
  store_->append_audit({0, 1000, "cli:ops", "key.create", "k1", {{"scope", "admin"}}});
  store_->append_audit({0, 0, "key:k1", "model.remove", "tiny", json::object()});
  const auto entries = store_->list_audit(10);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].action, "model.remove");
  EXPECT_EQ(entries[0].actor, "key:k1");
  EXPECT_GT(entries[0].created_ms, 1000);  // 0 is now
  EXPECT_EQ(entries[1].target, "k1");
  EXPECT_EQ(entries[1].details, (json{{"scope", "admin"}}));
  EXPECT_GT(entries[0].id, entries[1].id);
  EXPECT_EQ(store_->list_audit(1).size(), 1u);
}

TEST_P(StoreContract, PingAnswers) { EXPECT_NO_THROW(store_->ping()); }

TEST_P(StoreContract, JobsKeepTheirOwnerAndListByOwner) {
  Job alice = make_job(job_id(1));
  alice.owner = "alice";
  store_->create_job(alice);
  store_->create_job(make_job(job_id(2)));  // the default owner
  Job bob = make_job(job_id(3));
  bob.owner = "bob";
  store_->create_job(bob);
  EXPECT_EQ(store_->get_job(job_id(1))->owner, "alice");
  EXPECT_EQ(store_->get_job(job_id(2))->owner, "default");
  JobFilter filter;
  filter.owner = "alice";
  const auto listed = store_->list_jobs(filter).jobs;
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id, job_id(1));
  filter.owner = "nobody";
  EXPECT_TRUE(store_->list_jobs(filter).jobs.empty());
  EXPECT_EQ(store_->list_jobs({}).jobs.size(), 3u);
}

ApiKeyRecord api_key(const std::string& id, const std::string& hash) {
  return {id, "key " + id, "user-" + id, "user", hash, 1000, 0, 10, 2, ""};
}

TEST_P(StoreContract, OwnerJobCountsSeeRecentAndUnfinishedJobs) {
  Job old = make_job(job_id(1));
  old.owner = "alice";
  old.created_ms = 1000;
  store_->create_job(old);
  for (int n = 2; n <= 3; ++n) {
    Job recent = make_job(job_id(n));
    recent.owner = "alice";
    recent.created_ms = 5000 + n;
    store_->create_job(recent);
  }
  Job other = make_job(job_id(4));
  other.owner = "bob";
  other.created_ms = 6000;
  store_->create_job(other);
  store_->cancel_job(job_id(3));

  const auto counts = store_->count_owner_jobs("alice", 5000);
  EXPECT_EQ(counts.created_since, 2);
  EXPECT_EQ(counts.oldest_since_ms, 5002);
  EXPECT_EQ(counts.unfinished, 2);  // job 1 and job 2 wait; job 3 was canceled
  const auto none = store_->count_owner_jobs("carol", 0);
  EXPECT_EQ(none.created_since, 0);
  EXPECT_EQ(none.oldest_since_ms, 0);
  EXPECT_EQ(none.unfinished, 0);
}

TEST_P(StoreContract, ApiKeysAreFoundByHashAndRevokedForGood) {
  EXPECT_FALSE(store_->has_api_keys());
  store_->create_api_key(api_key("k1", "hash-1"));
  store_->create_api_key(api_key("k2", "hash-2"));
  EXPECT_TRUE(store_->has_api_keys());
  EXPECT_THROW(store_->create_api_key(api_key("k1", "hash-3")), Error);  // the same id
  EXPECT_THROW(store_->create_api_key(api_key("k3", "hash-2")), Error);  // the same hash

  const auto found = store_->find_api_key("hash-2");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->id, "k2");
  EXPECT_EQ(found->user, "user-k2");
  EXPECT_EQ(found->scope, "user");
  EXPECT_EQ(found->revoked_ms, 0);
  EXPECT_EQ(found->jobs_per_minute, 10);
  EXPECT_EQ(found->max_concurrent_jobs, 2);
  EXPECT_FALSE(store_->find_api_key("hash-9"));

  EXPECT_TRUE(store_->revoke_api_key("k2"));
  const int64_t revoked = store_->find_api_key("hash-2")->revoked_ms;
  EXPECT_GT(revoked, 0);
  EXPECT_TRUE(store_->revoke_api_key("k2"));  // again: the first time stays
  EXPECT_EQ(store_->find_api_key("hash-2")->revoked_ms, revoked);
  EXPECT_FALSE(store_->revoke_api_key("k9"));

  const auto keys = store_->list_api_keys();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].id, "k1");
  EXPECT_EQ(keys[1].id, "k2");
  // Revoking every key never turns the requirement off.
  EXPECT_TRUE(store_->revoke_api_key("k1"));
  EXPECT_TRUE(store_->has_api_keys());
}

// What only the PostgreSQL store has: its migrations table, errors of a server that is gone or
// restarted, and how libpq's errors map to error codes.
class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    try {
      url_ = test::PostgresServer::instance().create_database();
    } catch (const std::exception& e) {
      FAIL() << e.what();
    }
  }
  std::string url_;
};

TEST_F(PostgresStoreTest, MigrationsAreRecordedOnceEach) {
  const auto migrations_dir =
      fs::path(DF_TEST_DATA_DIR) / "../../../src/store/migrations/postgres";
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(migrations_dir)) {
    if (entry.path().extension() == ".sql") files.push_back(entry.path().stem().string());
  }
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty());
  EXPECT_EQ(latest_postgres_schema_version(), static_cast<int64_t>(files.size()));
  PostgresStore first(url_);
  PostgresStore again(url_);
  PgConnection db(url_);
  const auto rows = db.exec("SELECT version, name FROM schema_migrations ORDER BY version");
  ASSERT_EQ(rows.rows(), static_cast<int>(files.size()));
  for (int row = 0; row < rows.rows(); ++row) {
    EXPECT_EQ(rows.integer(row, 0), row + 1);
    EXPECT_EQ(rows.text(row, 1), files[static_cast<size_t>(row)]);
  }
  const auto versions = migrate_postgres(db);
  EXPECT_EQ(versions.before, versions.after) << "nothing left to apply";
}

TEST_F(PostgresStoreTest, DatabaseFromANewerBuildIsRefused) {
  { PostgresStore migrated(url_); }
  PgConnection(url_).exec("INSERT INTO schema_migrations VALUES (99, '099_future', 0)");
  const Error error = test::error_of([&] { PostgresStore newer(url_); });
  EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  EXPECT_NE(std::string(error.what()).find("newer"), std::string::npos) << error.what();
}

TEST_F(PostgresStoreTest, OpenStoreTakesPostgresUrls) {
  for (const std::string scheme : {"postgres://", "postgresql://"}) {
    auto store = open_store(scheme + url_.substr(url_.find("://") + 3));
    EXPECT_NO_THROW(store->ping()) << scheme;
  }
}

TEST_F(PostgresStoreTest, UnreachableServerIsUnavailable) {
  const Error error = test::error_of([] { open_store("postgres://postgres@127.0.0.1:1/none"); });
  EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  EXPECT_NE(std::string(error.what()).find("cannot connect"), std::string::npos) << error.what();
}

TEST_F(PostgresStoreTest, ServerRestartIsUnavailableMeanwhileAndThenServedAgain) {
  auto store = open_store(url_);
  store->create_job(make_job(job_id(1)));
  auto& server = test::PostgresServer::instance();
  server.stop();
  EXPECT_EQ(test::error_code_of([&] { store->ping(); }), ErrorCode::kUnavailable);
  EXPECT_EQ(test::error_code_of([&] { store->create_job(make_job(job_id(2))); }),
            ErrorCode::kUnavailable);
  server.start();
  EXPECT_NO_THROW(store->ping()) << "a fresh connection replaces the broken ones";
  EXPECT_TRUE(store->create_job(make_job(job_id(2))).created);
  EXPECT_EQ(store->list_jobs({}).jobs.size(), 2u);
}

TEST_F(PostgresStoreTest, DuplicateClientChosenIdIsAConflict) {
  auto store = open_store(url_);
  store->create_job(make_job("prompt-1"));
  const Error error = test::error_of([&] { store->create_job(make_job("prompt-1")); });
  EXPECT_EQ(error.code(), ErrorCode::kConflict);
  EXPECT_NE(std::string(error.what()).find("prompt-1"), std::string::npos) << error.what();
}

TEST_F(PostgresStoreTest, ConnectionMapsServerErrorsToCodes) {
  PgConnection db(url_);
  db.exec("CREATE TABLE t (v INTEGER PRIMARY KEY, s TEXT)");
  db.query("INSERT INTO t VALUES ($1, $2)", 1, nullptr);
  EXPECT_EQ(test::error_code_of([&] { db.query("INSERT INTO t VALUES ($1, 'x')", 1); }),
            ErrorCode::kConflict);
  const Error syntax = test::error_of([&] { db.exec("NOT SQL"); });
  EXPECT_EQ(syntax.code(), ErrorCode::kInternal);
  EXPECT_EQ(syntax.details().at("sqlstate"), "42601");
  EXPECT_TRUE(db.healthy());
  const auto rows = db.query("SELECT v, s, $1::float8, $2::boolean FROM t", 0.1, true);
  ASSERT_EQ(rows.rows(), 1);
  EXPECT_EQ(rows.integer(0, 0), 1);
  EXPECT_TRUE(rows.is_null(0, 1));
  EXPECT_DOUBLE_EQ(rows.real(0, 2), 0.1);
  EXPECT_TRUE(rows.boolean(0, 3));
}

TEST_F(PostgresStoreTest, UncommittedTransactionIsRolledBack) {
  PgConnection db(url_);
  db.exec("CREATE TABLE t (v INTEGER)");
  {
    PgTransaction transaction(db);
    db.exec("INSERT INTO t VALUES (1)");
  }
  {
    PgTransaction transaction(db);
    db.exec("INSERT INTO t VALUES (2)");
    transaction.commit();
  }
  EXPECT_FALSE(db.in_transaction());
  EXPECT_EQ(db.exec("SELECT string_agg(v::text, ',') FROM t").text(0, 0), "2");
}

}  // namespace
}  // namespace df::store

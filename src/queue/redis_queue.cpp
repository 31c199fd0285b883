// The Redis Streams queue: dispatch by ensure scripts, claims through the consumer group, each
// claim decided by the store.
#include "queue/redis_queue.h"

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "core/ids.h"
#include "core/json_text.h"
#include "queue/redis_scripts.h"

namespace df::queue {
namespace {

constexpr const char* kGroup = "workers";
// Longest single BLOCK: a wake() or a due delayed job waits at most this long to be noticed.
constexpr int64_t kMaxBlockMs = 500;
constexpr int kReconcilePage = 500;
constexpr int kPromoteBatch = 100;
constexpr int kOwnPendingBatch = 100;
// XAUTOCLAIM calls per band and claim; each looks at up to 10 pending entries.
constexpr int kAutoclaimRounds = 4;
constexpr const char* kDeadLetterLength = "10000";

// The band of a priority: 0 high (> 0), 1 normal (0), 2 low (< 0).
int band_of(int priority) { return priority > 0 ? 0 : priority == 0 ? 1 : 2; }

std::string field_value(const redisReply& fields, std::string_view name) {
  if (fields.type != REDIS_REPLY_ARRAY) return "";
  for (size_t i = 0; i + 1 < fields.elements; i += 2) {
    if (reply_text(*fields.element[i]) == name) return reply_text(*fields.element[i + 1]);
  }
  return "";
}

// The integer of `name` in a reply of alternating names and values (0 when absent).
long long field_integer(const redisReply& fields, std::string_view name) {
  if (fields.type != REDIS_REPLY_ARRAY) return 0;
  for (size_t i = 0; i + 1 < fields.elements; i += 2) {
    const redisReply& value = *fields.element[i + 1];
    if (reply_text(*fields.element[i]) == name && value.type == REDIS_REPLY_INTEGER) {
      return value.integer;
    }
  }
  return 0;
}

}  // namespace

RedisQueue::RedisQueue(RedisQueueSettings settings, store::Store& store)
    : settings_(std::move(settings)),
      store_(store),
      pool_(RedisEndpoint{settings_.host, settings_.port, settings_.db, settings_.username,
                          settings_.password}),
      streams_{key("jobs:high"), key("jobs:normal"), key("jobs:low")} {}

std::string RedisQueue::stream_for(int priority) const { return streams_[band_of(priority)]; }

std::vector<std::string> RedisQueue::ensure_command(const std::string& job_id, int priority,
                                                    int64_t run_after_ms) const {
  // The script finds the job's stream among its KEYS, where the streams start at 3.
  return {"EVAL",
          kEnsureScript,
          "5",
          key("dispatch"),
          key("delayed"),
          streams_[0],
          streams_[1],
          streams_[2],
          job_id,
          std::to_string(3 + band_of(priority)),
          std::to_string(run_after_ms),
          std::to_string(now_ms())};
}

bool RedisQueue::ensure(RedisConnection& connection, const std::string& job_id, int priority,
                        int64_t run_after_ms) {
  const RedisReply reply =
      connection.call(ensure_command(job_id, priority, run_after_ms), "dispatching a job");
  return reply_integer(*reply, "dispatching a job") == 1;
}

void RedisQueue::release(RedisConnection& connection, const std::string& stream,
                         const std::string& id, const std::string& job_id) {
  connection.call({"EVAL", kReleaseScript, "2", key("dispatch"), stream, kGroup, id, job_id},
                  "ending a delivery");
}

void RedisQueue::promote_due(RedisConnection& connection) {
  connection.call(
      {"EVAL", kPromoteScript, "5", key("dispatch"), key("delayed"), streams_[0], streams_[1],
       streams_[2], std::to_string(now_ms()), std::to_string(kPromoteBatch)},
      "moving due retries to their streams");
}

void RedisQueue::create_groups(RedisConnection& connection) {
  std::vector<std::vector<std::string>> commands;
  for (const auto& stream : streams_) {
    commands.push_back({"XGROUP", "CREATE", stream, kGroup, "0", "MKSTREAM"});
  }
  for (RedisReply& reply : connection.pipeline(commands)) {
    if (!is_error_reply(*reply, "BUSYGROUP")) {
      connection.checked(std::move(reply), "creating the consumer group");
    }
  }
}

RedisReply RedisQueue::group_command(RedisConnection& connection,
                                     const std::vector<std::string>& args, std::string_view what) {
  RedisReply reply = connection.command(args);
  if (is_error_reply(*reply, "NOGROUP")) {
    // New streams, or Redis lost them (flushed, restarted without persistence).
    create_groups(connection);
    reply = connection.command(args);
  }
  return connection.checked(std::move(reply), what);
}

void RedisQueue::enqueue(const Job& job) {
  auto connection = pool_.borrow();
  ensure(*connection, job.id, job.priority, job.run_after_ms);
}

void RedisQueue::forget_idle_consumers(RedisConnection& connection) {
  for (const auto& stream : streams_) {
    const RedisReply consumers = connection.command({"XINFO", "CONSUMERS", stream, kGroup});
    if (consumers->type != REDIS_REPLY_ARRAY) continue;  // no such stream or group (yet)
    for (size_t i = 0; i < consumers->elements; ++i) {
      const redisReply& consumer = *consumers->element[i];
      if (field_integer(consumer, "pending") == 0 &&
          field_integer(consumer, "idle") >= settings_.forget_consumers_idle_ms) {
        connection.call({"XGROUP", "DELCONSUMER", stream, kGroup, field_value(consumer, "name")},
                        "removing a stopped worker from the group");
      }
    }
  }
}

int RedisQueue::reconcile() {
  auto connection = pool_.borrow();
  forget_idle_consumers(*connection);
  int added = 0;
  std::string after_id;
  while (true) {
    const std::vector<store::DispatchableJob> page =
        store_.dispatchable_jobs(after_id, kReconcilePage);
    std::vector<std::vector<std::string>> commands;
    for (const auto& job : page) {
      commands.push_back(ensure_command(job.job_id, job.priority, job.run_after_ms));
    }
    for (RedisReply& reply : connection->pipeline(commands)) {
      const RedisReply checked = connection->checked(std::move(reply), "dispatching a job");
      added += static_cast<int>(reply_integer(*checked, "dispatching a job"));
    }
    if (page.size() < static_cast<size_t>(kReconcilePage)) return added;
    after_id = page.back().job_id;
  }
}

void RedisQueue::reconcile_when_due() {
  const int64_t now = now_ms();
  int64_t next = next_reconcile_try_ms_.load();
  if (now < next ||
      !next_reconcile_try_ms_.compare_exchange_strong(next, now + settings_.reconcile_ms)) {
    return;
  }
  try {
    bool mine = false;
    {
      auto connection = pool_.borrow();
      // One process a round: the others see the key and skip.
      const RedisReply reply = connection->call(
          {"SET", key("reconcile"), "1", "NX", "PX", std::to_string(settings_.reconcile_ms)},
          "taking the reconcile turn");
      mine = reply->type != REDIS_REPLY_NIL;
    }
    if (mine) reconcile();
  } catch (...) {
    next_reconcile_try_ms_ = 0;  // try again on the next claim, when Redis may be back
    throw;
  }
}

std::vector<RedisQueue::Message> RedisQueue::read_group(RedisConnection& connection,
                                                        const std::string& worker_id,
                                                        const std::vector<std::string>& streams,
                                                        const std::string& id, int count,
                                                        std::optional<int64_t> block_ms) {
  std::vector<std::string> args = {"XREADGROUP", "GROUP", kGroup,
                                   worker_id,    "COUNT", std::to_string(count)};
  if (block_ms) {
    args.insert(args.end(), {"BLOCK", std::to_string(std::max<int64_t>(*block_ms, 1))});
  }
  args.push_back("STREAMS");
  args.insert(args.end(), streams.begin(), streams.end());
  args.insert(args.end(), streams.size(), id);
  const RedisReply reply = group_command(connection, args, "reading jobs");

  std::vector<Message> messages;
  if (reply->type != REDIS_REPLY_ARRAY) return messages;  // nil: nothing came
  for (size_t s = 0; s < reply->elements; ++s) {
    const redisReply& stream = *reply->element[s];
    if (stream.type != REDIS_REPLY_ARRAY || stream.elements != 2) continue;
    const redisReply& entries = *stream.element[1];
    for (size_t e = 0; e < entries.elements; ++e) {
      const redisReply& entry = *entries.element[e];
      if (entry.type != REDIS_REPLY_ARRAY || entry.elements != 2) continue;
      // A pending message deleted since has nil fields: it names no job.
      messages.push_back({reply_text(*stream.element[0]), reply_text(*entry.element[0]),
                          field_value(*entry.element[1], "job_id")});
    }
  }
  // Highest band first, whatever order Redis answered in.
  std::stable_sort(messages.begin(), messages.end(), [&](const Message& a, const Message& b) {
    return std::find(streams_.begin(), streams_.end(), a.stream) <
           std::find(streams_.begin(), streams_.end(), b.stream);
  });
  return messages;
}

std::vector<RedisQueue::Message> RedisQueue::autoclaim(const Claimant& claimant, int band,
                                                       bool& scan_done) {
  const std::string& stream = streams_[band];
  std::string start;
  {
    std::lock_guard lock(autoclaim_mutex_);
    start = autoclaim_cursors_[band].empty() ? "0-0" : autoclaim_cursors_[band];
  }
  const RedisReply reply = group_command(claimant.connection,
                                         {"XAUTOCLAIM", stream, kGroup, claimant.worker_id,
                                          std::to_string(claimant.lease_ms), start, "COUNT", "1"},
                                         "taking over jobs of stopped workers");
  std::vector<Message> messages;
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
    scan_done = true;
    return messages;
  }
  const std::string next = reply_text(*reply->element[0]);
  scan_done = next == "0-0";
  {
    std::lock_guard lock(autoclaim_mutex_);
    autoclaim_cursors_[band] = next;
  }
  const redisReply& entries = *reply->element[1];
  for (size_t e = 0; e < entries.elements; ++e) {
    const redisReply& entry = *entries.element[e];
    if (entry.type != REDIS_REPLY_ARRAY || entry.elements != 2) continue;
    messages.push_back(
        {stream, reply_text(*entry.element[0]), field_value(*entry.element[1], "job_id")});
  }
  return messages;
}

std::optional<Delivery> RedisQueue::take(const Claimant& claimant, const Message& message) {
  if (message.job_id.empty()) {
    release(claimant.connection, message.stream, message.id, "");
    return std::nullopt;
  }
  if (auto job = store_.claim_job_by_id(message.job_id, claimant.worker_id, claimant.lease_ms)) {
    return Delivery{std::move(*job), message.stream + " " + message.id};
  }
  const std::optional<Job> job = store_.get_job(message.job_id);
  if (!job || is_terminal(job->status)) {
    release(claimant.connection, message.stream, message.id, message.job_id);
  } else if (job->status == JobStatus::kQueued) {
    // Not due yet: it waits in the delayed set instead.
    release(claimant.connection, message.stream, message.id, message.job_id);
    ensure(claimant.connection, job->id, job->priority, job->run_after_ms);
  }
  // Otherwise another worker runs it under a live lease: the message stays pending, and is taken
  // over by XAUTOCLAIM should that worker stop.
  return std::nullopt;
}

std::optional<Delivery> RedisQueue::take_first(const Claimant& claimant,
                                               const std::vector<Message>& messages) {
  for (const Message& message : messages) {
    if (auto delivery = take(claimant, message)) return delivery;
  }
  return std::nullopt;
}

std::optional<Delivery> RedisQueue::take_own_pending(const Claimant& claimant) {
  const std::vector<std::string> streams(streams_.begin(), streams_.end());
  return take_first(claimant, read_group(claimant.connection, claimant.worker_id, streams, "0",
                                         kOwnPendingBatch, std::nullopt));
}

std::optional<Delivery> RedisQueue::take_abandoned(const Claimant& claimant) {
  for (int band = 0; band < static_cast<int>(streams_.size()); ++band) {
    for (int round = 0; round < kAutoclaimRounds; ++round) {
      bool scan_done = false;
      if (auto delivery = take_first(claimant, autoclaim(claimant, band, scan_done))) {
        return delivery;
      }
      if (scan_done) break;
    }
  }
  return std::nullopt;
}

std::optional<Delivery> RedisQueue::take_new(const Claimant& claimant) {
  for (const auto& stream : streams_) {
    while (true) {
      const std::vector<Message> messages =
          read_group(claimant.connection, claimant.worker_id, {stream}, ">", 1, std::nullopt);
      if (messages.empty()) break;
      if (auto delivery = take_first(claimant, messages)) return delivery;
    }
  }
  return std::nullopt;
}

std::optional<Delivery> RedisQueue::claim(const std::string& worker_id, int64_t lease_ms,
                                          int64_t wait_ms) {
  const uint64_t generation = wake_generation_.load();
  const int64_t deadline = now_ms() + std::max<int64_t>(wait_ms, 0);
  reconcile_when_due();
  auto connection = pool_.borrow();
  const Claimant claimant{*connection, worker_id, lease_ms};
  promote_due(*connection);
  if (auto delivery = take_own_pending(claimant)) return delivery;
  if (auto delivery = take_abandoned(claimant)) return delivery;
  const std::vector<std::string> streams(streams_.begin(), streams_.end());
  while (true) {
    if (auto delivery = take_new(claimant)) return delivery;
    const int64_t left = deadline - now_ms();
    if (left <= 0 || wake_generation_.load() != generation) return std::nullopt;
    // One message a stream at most; those not taken stay pending to this worker, and its next
    // claim takes them first.
    const std::vector<Message> arrived =
        read_group(*connection, worker_id, streams, ">", 1, std::min(left, kMaxBlockMs));
    if (auto delivery = take_first(claimant, arrived)) return delivery;
    promote_due(*connection);
    reconcile_when_due();
  }
}

void RedisQueue::wake() { wake_generation_.fetch_add(1); }

std::pair<std::string, std::string> RedisQueue::parse_receipt(const std::string& receipt) const {
  const size_t space = receipt.find(' ');
  const std::string stream = receipt.substr(0, space);
  if (space == std::string::npos || space + 1 == receipt.size() ||
      std::find(streams_.begin(), streams_.end(), stream) == streams_.end()) {
    throw Error(
        ErrorCode::kInvalidArgument,
        "'" + receipt + "' is not a delivery of the Redis queue under '" + settings_.prefix + "'");
  }
  return {stream, receipt.substr(space + 1)};
}

void RedisQueue::touch(const Delivery& delivery) {
  const auto [stream, id] = parse_receipt(delivery.receipt);
  auto connection = pool_.borrow();
  RedisReply reply =
      connection->command({"XCLAIM", stream, kGroup, delivery.job.worker_id, "0", id, "JUSTID"});
  // Redis lost the stream: nothing to keep; reconcile dispatches the job again should its lease
  // run out.
  if (is_error_reply(*reply, "NOGROUP")) return;
  connection->checked(std::move(reply), "renewing a delivery");
}

void RedisQueue::settle(const Delivery& delivery, const SettleInfo& info) {
  const auto [stream, id] = parse_receipt(delivery.receipt);
  const Job& job = delivery.job;
  auto connection = pool_.borrow();
  release(*connection, stream, id, job.id);
  switch (info.settlement) {
    case Settlement::kDone:
      break;
    case Settlement::kRetry:
      ensure(*connection, job.id, job.priority, info.run_after_ms);
      break;
    case Settlement::kDeadLetter:
      connection->call({"XADD", key("dead"), "MAXLEN", "~", kDeadLetterLength, "*", "job_id",
                        job.id, "attempts", std::to_string(job.attempts), "error",
                        dump_json(info.error), "failed_ms", std::to_string(now_ms())},
                       "recording a dead letter");
      break;
  }
}

void RedisQueue::ping() {
  auto connection = pool_.borrow();
  connection->call({"PING"}, "a ping");
}

}  // namespace df::queue

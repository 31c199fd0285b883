// The Store on SQLite: jobs, the database queue (claims with leases), events, steps, artifacts.
#include "store/sqlite_store.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "core/ids.h"
#include "core/json_text.h"
#include "store/postgres_store.h"
#include "store/store_events.h"

namespace df::store {
namespace {

using nlohmann::json;

constexpr const char* kMigrations[] = {
#include "sqlite_migrations.inc"
};

constexpr const char* kJobColumns =
    "id, type, status, spec, idempotency_key, request_hash, priority, attempts, max_attempts, "
    "progress, items, error, worker_id, lease_expires_ms, run_after_ms, cancel_requested, "
    "created_ms, updated_ms, started_ms, finished_ms, schema_version, owner, webhook_url, "
    "webhook_events, webhook_key_id";

json parse_or_null(const std::string& text) {
  return text.empty() ? json() : json::parse(text);
}

Job read_job(const SqliteStatement& row) {
  Job job;
  job.id = row.column_text(0);
  job.type = row.column_text(1);
  job.status = job_status_from_name(row.column_text(2));
  job.spec = json::parse(row.column_text(3));
  job.idempotency_key = row.column_text(4);
  job.request_hash = row.column_text(5);
  job.priority = static_cast<int>(row.column_int(6));
  job.attempts = static_cast<int>(row.column_int(7));
  job.max_attempts = static_cast<int>(row.column_int(8));
  job.progress = row.column_double(9);
  for (const auto& item : json::parse(row.column_text(10))) job.items.push_back(item_from_json(item));
  job.error = parse_or_null(row.column_text(11));
  job.worker_id = row.column_text(12);
  job.lease_expires_ms = row.column_int(13);
  job.run_after_ms = row.column_int(14);
  job.cancel_requested = row.column_int(15) != 0;
  job.created_ms = row.column_int(16);
  job.updated_ms = row.column_int(17);
  job.started_ms = row.column_int(18);
  job.finished_ms = row.column_int(19);
  job.schema_version = static_cast<int>(row.column_int(20));
  job.owner = row.column_text(21);
  job.webhook = {row.column_text(22), split_webhook_events(row.column_text(23)), row.column_text(24)};
  return job;
}

// The columns read_event() reads, in its order.
constexpr const char* kEventColumns =
    "id, job_id, type, code, item_index, message, plain, data, created_ms";

Event read_event(const SqliteStatement& row) {
  Event event;
  event.id = row.column_int(0);
  event.job_id = row.column_text(1);
  event.type = row.column_text(2);
  event.code = row.column_text(3);
  if (!row.column_is_null(4)) event.item_index = static_cast<int>(row.column_int(4));
  event.message = row.column_text(5);
  event.plain = row.column_text(6);
  event.data = json::parse(row.column_text(7));
  event.created_ms = row.column_int(8);
  return event;
}

Step read_step(const SqliteStatement& row) {
  Step step;
  step.id = row.column_int(0);
  step.job_id = row.column_text(1);
  step.attempt = static_cast<int>(row.column_int(2));
  step.worker_id = row.column_text(3);
  step.runner = row.column_text(4);
  step.device = row.column_text(5);
  step.status = row.column_text(6);
  step.started_ms = row.column_int(7);
  step.finished_ms = row.column_int(8);
  step.gpu_mem_used_before = row.column_int(9);
  step.gpu_mem_used_after = row.column_int(10);
  step.peak_gpu_mem_used = row.column_int(11);
  step.memory_kind = row.column_text(12);
  step.error = parse_or_null(row.column_text(13));
  return step;
}

// The columns read_artifact() reads, in its order.
constexpr const char* kArtifactColumns =
    "id, job_id, attempt, item_index, key, content_type, size, sha256, seed, width, height, "
    "metadata, created_ms";

Artifact read_artifact(const SqliteStatement& row) {
  Artifact artifact;
  artifact.id = row.column_int(0);
  artifact.job_id = row.column_text(1);
  artifact.attempt = static_cast<int>(row.column_int(2));
  artifact.item_index = static_cast<int>(row.column_int(3));
  artifact.key = row.column_text(4);
  artifact.content_type = row.column_text(5);
  artifact.size = row.column_int(6);
  artifact.sha256 = row.column_text(7);
  artifact.seed = std::stoull(row.column_text(8));
  artifact.width = static_cast<int>(row.column_int(9));
  artifact.height = static_cast<int>(row.column_int(10));
  artifact.metadata = json::parse(row.column_text(11));
  artifact.created_ms = row.column_int(12);
  return artifact;
}

json items_json(const std::vector<JobItem>& items) {
  json array = json::array();
  for (const auto& item : items) array.push_back(item_to_json(item));
  return array;
}

}  // namespace

SqliteStore::SqliteStore(const std::string& path) : db_(path) {
  retry_while_busy([this] { migrate(); });  // stores opening a new file together: one migrates
}

void SqliteStore::migrate() {
  std::lock_guard lock(mutex_);
  SqliteTransaction transaction(db_);
  auto version_query = db_.prepare("PRAGMA user_version");
  version_query.step();
  const auto applied = version_query.column_int(0);
  const auto available = static_cast<int64_t>(std::size(kMigrations));
  if (applied > available) {
    throw Error(ErrorCode::kUnavailable,
                "database schema version " + std::to_string(applied) +
                    " is newer than this build understands (" + std::to_string(available) + ")");
  }
  for (auto version = applied; version < available; ++version) db_.exec(kMigrations[version]);
  db_.exec("PRAGMA user_version = " + std::to_string(available));
  transaction.commit();
}

std::optional<Job> SqliteStore::get_job_locked(const std::string& id) {
  auto query = db_.prepare(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = ?");
  query.bind(1, id);
  if (!query.step()) return std::nullopt;
  return read_job(query);
}

int64_t SqliteStore::insert_event(const Event& event) {
  auto insert = db_.prepare(
      "INSERT INTO events (job_id, type, code, item_index, message, plain, data, created_ms) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  insert.bind(1, event.job_id).bind(2, event.type).bind(3, event.code).bind(4, event.item_index);
  insert.bind(5, event.message).bind(6, event.plain).bind(7, dump_json(event.data));
  insert.bind(8, event.created_ms ? event.created_ms : now_ms());
  insert.run();
  const int64_t id = db_.last_insert_id();
  enqueue_webhook(event, id);
  return id;
}

CreateJobResult SqliteStore::create_job(const Job& job) {
  std::lock_guard lock(mutex_);
  SqliteTransaction transaction(db_);
  if (!job.idempotency_key.empty()) {
    auto existing = db_.prepare(std::string("SELECT ") + kJobColumns +
                                " FROM jobs WHERE idempotency_key = ?");
    existing.bind(1, job.idempotency_key);
    if (existing.step()) {
      Job earlier = read_job(existing);
      if (earlier.request_hash != job.request_hash) {
        throw Error(ErrorCode::kConflict,
                    "Idempotency-Key '" + job.idempotency_key +
                        "' was already used with a different request body",
                    {{"job_id", earlier.id}});
      }
      return {earlier, false};
    }
  }
  auto insert = db_.prepare(
      "INSERT INTO jobs (id, type, status, spec, idempotency_key, request_hash, priority, "
      "max_attempts, items, created_ms, updated_ms, schema_version, owner, webhook_url, "
      "webhook_events, webhook_key_id) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  insert.bind(1, job.id).bind(2, job.type).bind(3, dump_json(job.spec));
  if (job.idempotency_key.empty()) {
    insert.bind(4, nullptr);
  } else {
    insert.bind(4, job.idempotency_key);
  }
  insert.bind(5, job.request_hash).bind(6, job.priority).bind(7, job.max_attempts);
  insert.bind(8, dump_json(items_json(job.items))).bind(9, job.created_ms).bind(10, job.created_ms);
  insert.bind(11, job.schema_version).bind(12, job.owner).bind(13, job.webhook.url);
  insert.bind(14, join_webhook_events(job.webhook.events)).bind(15, job.webhook.key_id);
  insert.run();
  insert_event(job_queued_event(job));
  auto created = get_job_locked(job.id);
  transaction.commit();
  return {*created, true};
}

std::optional<Job> SqliteStore::get_job(const std::string& id) {
  std::lock_guard lock(mutex_);
  return get_job_locked(id);
}

std::optional<Job> SqliteStore::find_job_by_idempotency_key(const std::string& key) {
  std::lock_guard lock(mutex_);
  auto query = db_.prepare(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE idempotency_key = ?");
  query.bind(1, key);
  if (!query.step()) return std::nullopt;
  return read_job(query);
}

JobPage SqliteStore::list_jobs(const JobFilter& filter) {
  if (filter.limit < 1) {
    throw Error(ErrorCode::kInvalidArgument, "a page of jobs holds at least one job",
                {{"limit", filter.limit}});
  }
  std::lock_guard lock(mutex_);
  std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs WHERE 1 = 1";
  if (filter.status) sql += " AND status = ?1";
  if (filter.owner) sql += " AND owner = ?4";
  // Ordered by creation time: ids are time-ordered UUIDv7s unless a client chose its own (ComfyUI's
  // prompt_id), so the id only breaks ties.
  if (!filter.cursor.empty()) {
    sql += " AND (created_ms, id) < (SELECT created_ms, id FROM jobs WHERE id = ?2)";
  }
  sql += " ORDER BY created_ms DESC, id DESC LIMIT ?3";
  auto query = db_.prepare(sql);
  if (filter.status) query.bind(1, std::string(job_status_name(*filter.status)));
  if (!filter.cursor.empty()) query.bind(2, filter.cursor);
  query.bind(3, filter.limit + 1);
  if (filter.owner) query.bind(4, *filter.owner);
  JobPage page;
  while (query.step()) page.jobs.push_back(read_job(query));
  if (static_cast<int>(page.jobs.size()) > filter.limit) {
    page.jobs.pop_back();
    page.next_cursor = page.jobs.back().id;
  }
  return page;
}

std::map<std::string, int64_t> SqliteStore::count_jobs_by_status() {
  std::lock_guard lock(mutex_);
  std::map<std::string, int64_t> counts;
  for (auto status : {JobStatus::kQueued, JobStatus::kRunning, JobStatus::kSucceeded,
                      JobStatus::kFailed, JobStatus::kCanceled}) {
    counts[std::string(job_status_name(status))] = 0;
  }
  auto query = db_.prepare("SELECT status, COUNT(*) FROM jobs GROUP BY status");
  while (query.step()) counts[query.column_text(0)] = query.column_int(1);
  return counts;
}

int64_t SqliteStore::count_jobs(JobStatus status) {
  std::lock_guard lock(mutex_);
  auto query = db_.prepare("SELECT COUNT(*) FROM jobs WHERE status = ?");
  query.bind(1, job_status_name(status));
  query.step();
  return query.column_int(0);
}

std::vector<Job> SqliteStore::history(int max_items) {
  std::lock_guard lock(mutex_);
  auto query = db_.prepare(std::string("SELECT ") + kJobColumns +
                           " FROM jobs WHERE status IN ('succeeded', 'failed', 'canceled') AND type <> '" +
                               kModelDownloadJobType + "' AND "
                           "hidden_from_history = 0 ORDER BY finished_ms DESC, id DESC LIMIT ?");
  query.bind(1, max_items < 0 ? int64_t{-1} : int64_t{max_items});
  std::vector<Job> jobs;
  while (query.step()) jobs.push_back(read_job(query));
  std::reverse(jobs.begin(), jobs.end());
  return jobs;
}

void SqliteStore::clear_history(const std::vector<std::string>& job_ids) {
  std::lock_guard lock(mutex_);
  SqliteTransaction transaction(db_);
  if (job_ids.empty()) {
    db_.exec("UPDATE jobs SET hidden_from_history = 1 WHERE status IN ('succeeded', 'failed', 'canceled')");
  } else {
    for (const auto& id : job_ids) {
      auto hide = db_.prepare("UPDATE jobs SET hidden_from_history = 1 WHERE id = ?");
      hide.bind(1, id);
      hide.run();
    }
  }
  transaction.commit();
}

namespace {
// Which jobs a worker may claim at `now` (?1): queued and due, or running with an expired lease.
constexpr const char* kClaimable =
    "((status = 'queued' AND run_after_ms <= ?1) OR "
    "(status = 'running' AND lease_expires_ms < ?1))";
}  // namespace

std::optional<Job> SqliteStore::claim_job(const std::string& worker_id, int64_t lease_ms) {
  return claim_next(" <> ", worker_id, lease_ms);
}

std::optional<Job> SqliteStore::claim_model_download(const std::string& worker_id, int64_t lease_ms) {
  return claim_next(" = ", worker_id, lease_ms);
}

std::optional<Job> SqliteStore::claim_next(const char* download_test, const std::string& worker_id,
                                           int64_t lease_ms) {
  std::lock_guard lock(mutex_);
  SqliteTransaction transaction(db_);
  auto pick = db_.prepare(std::string("SELECT id FROM jobs WHERE ") + kClaimable + " AND type" +
                          download_test + "'" + kModelDownloadJobType +
                          "' ORDER BY priority DESC, created_ms, id LIMIT 1");
  pick.bind(1, now_ms());
  if (!pick.step()) return std::nullopt;
  auto job = claim_locked(pick.column_text(0), worker_id, lease_ms);
  transaction.commit();
  return job;
}

std::optional<Job> SqliteStore::claim_job_by_id(const std::string& job_id,
                                                const std::string& worker_id, int64_t lease_ms) {
  std::lock_guard lock(mutex_);
  SqliteTransaction transaction(db_);
  auto job = claim_locked(job_id, worker_id, lease_ms);
  transaction.commit();
  return job;
}

std::optional<Job> SqliteStore::claim_locked(const std::string& job_id,
                                             const std::string& worker_id, int64_t lease_ms) {
  const int64_t now = now_ms();
  auto claim = db_.prepare(
      std::string("UPDATE jobs SET status = 'running', worker_id = ?2, attempts = attempts + 1, "
                  "lease_expires_ms = ?3, updated_ms = ?1, started_ms = CASE WHEN started_ms = 0 "
                  "THEN ?1 ELSE started_ms END WHERE id = ?4 AND ") +
      kClaimable);
  claim.bind(1, now).bind(2, worker_id).bind(3, now + lease_ms).bind(4, job_id);
  claim.run();
  if (claim.changes() != 1) return std::nullopt;
  return get_job_locked(job_id);
}

std::vector<DispatchableJob> SqliteStore::dispatchable_jobs(const std::string& after_id,
                                                            int limit) {
  std::lock_guard lock(mutex_);
  auto query = db_.prepare(
      std::string("SELECT id, priority, run_after_ms FROM jobs WHERE id > ? AND (status = "
                  "'queued' OR (status = 'running' AND lease_expires_ms < ?)) AND type <> '") +
      kModelDownloadJobType + "' ORDER BY id LIMIT ?");
  query.bind(1, after_id).bind(2, now_ms()).bind(3, limit);
  std::vector<DispatchableJob> jobs;
  while (query.step()) {
    jobs.push_back(
        {query.column_text(0), static_cast<int>(query.column_int(1)), query.column_int(2)});
  }
  return jobs;
}

bool SqliteStore::holds_lease(const Lease& lease) {
  auto query = db_.prepare(
      "SELECT 1 FROM jobs WHERE id = ? AND status = 'running' AND worker_id = ? AND attempts = ?");
  query.bind(1, lease.job_id).bind(2, lease.worker_id).bind(3, lease.attempt);
  return query.step();
}

bool SqliteStore::renew_lease(const Lease& lease, int64_t lease_ms) {
  std::lock_guard lock(mutex_);
  auto update = db_.prepare(
      "UPDATE jobs SET lease_expires_ms = ? WHERE id = ? AND status = 'running' AND "
      "worker_id = ? AND attempts = ?");
  update.bind(1, now_ms() + lease_ms).bind(2, lease.job_id).bind(3, lease.worker_id);
  update.bind(4, lease.attempt);
  update.run();
  return update.changes() == 1;
}

bool SqliteStore::save_items(const Lease& lease, const std::vector<JobItem>& items,
                             double progress) {
  std::lock_guard lock(mutex_);
  auto update = db_.prepare(
      "UPDATE jobs SET items = ?, progress = ?, updated_ms = ? WHERE id = ? AND "
      "status = 'running' AND worker_id = ? AND attempts = ?");
  update.bind(1, dump_json(items_json(items))).bind(2, progress).bind(3, now_ms());
  update.bind(4, lease.job_id).bind(5, lease.worker_id).bind(6, lease.attempt);
  update.run();
  return update.changes() == 1;
}

bool SqliteStore::finish_job(const Lease& lease, JobStatus status, const json& error,
                             const Event& terminal_event) {
  if (terminal_event.job_id != lease.job_id) return false;
  std::lock_guard lock(mutex_);
  SqliteTransaction transaction(db_);
  const int64_t now = now_ms();
  auto update = db_.prepare(
      "UPDATE jobs SET status = ?, error = ?, progress = CASE WHEN ? THEN 1 ELSE progress END, "
      "lease_expires_ms = 0, updated_ms = ?, finished_ms = ? WHERE id = ? AND "
      "status = 'running' AND worker_id = ? AND attempts = ?");
  update.bind(1, std::string(job_status_name(status)));
  if (error.is_null()) {
    update.bind(2, nullptr);
  } else {
    update.bind(2, dump_json(error));
  }
  update.bind(3, status == JobStatus::kSucceeded ? 1 : 0).bind(4, now).bind(5, now);
  update.bind(6, lease.job_id).bind(7, lease.worker_id).bind(8, lease.attempt);
  update.run();
  if (update.changes() != 1) return false;
  insert_event(terminal_event);
  transaction.commit();
  return true;
}

bool SqliteStore::requeue_job(const Lease& lease, int64_t run_after_ms, const json& error,
                              bool attempt_counts) {
  std::lock_guard lock(mutex_);
  auto update = db_.prepare(
      "UPDATE jobs SET status = 'queued', error = ?, worker_id = NULL, lease_expires_ms = 0, "
      "run_after_ms = ?, updated_ms = ?, max_attempts = max_attempts + ? WHERE id = ? AND "
      "status = 'running' AND worker_id = ? AND attempts = ?");
  update.bind(1, dump_json(error)).bind(2, run_after_ms).bind(3, now_ms());
  update.bind(4, attempt_counts ? 0 : 1).bind(5, lease.job_id);
  update.bind(6, lease.worker_id).bind(7, lease.attempt);
  update.run();
  return update.changes() == 1;
}

CancelOutcome SqliteStore::cancel_job(const std::string& id) {
  std::lock_guard lock(mutex_);
  SqliteTransaction transaction(db_);
  auto job = get_job_locked(id);
  if (!job) throw Error(ErrorCode::kNotFound, "no job with id '" + id + "'");
  if (is_terminal(job->status)) return CancelOutcome::kAlreadyFinished;
  const int64_t now = now_ms();
  if (job->status == JobStatus::kQueued) {
    auto update = db_.prepare(
        "UPDATE jobs SET status = 'canceled', cancel_requested = 1, error = ?, updated_ms = ?, "
        "finished_ms = ? WHERE id = ?");
    update.bind(1, dump_json(canceled_while_queued_error())).bind(2, now).bind(3, now).bind(4, id);
    update.run();
    insert_event(canceled_while_queued_event(*job));
    transaction.commit();
    return CancelOutcome::kCanceled;
  }
  auto update = db_.prepare("UPDATE jobs SET cancel_requested = 1, updated_ms = ? WHERE id = ?");
  update.bind(1, now).bind(2, id);
  update.run();
  transaction.commit();
  return CancelOutcome::kRequested;
}

int64_t SqliteStore::append_event(const Event& event, const Lease* lease) {
  std::lock_guard lock(mutex_);
  SqliteTransaction transaction(db_);
  if (lease != nullptr && (event.job_id != lease->job_id || !holds_lease(*lease))) return 0;
  int64_t id = insert_event(event);
  transaction.commit();
  return id;
}

std::vector<Event> SqliteStore::events_after(const std::string& job_id, int64_t after_id,
                                             int limit) {
  std::lock_guard lock(mutex_);
  auto query = db_.prepare(
      std::string("SELECT ") + kEventColumns + " FROM events "
      "WHERE job_id = ? AND id > ? ORDER BY id LIMIT ?");
  query.bind(1, job_id).bind(2, after_id).bind(3, limit);
  std::vector<Event> events;
  while (query.step()) events.push_back(read_event(query));
  return events;
}

std::optional<Event> SqliteStore::get_event(int64_t id) {
  std::lock_guard lock(mutex_);
  auto query = db_.prepare(
      std::string("SELECT ") + kEventColumns + " FROM events "
      "WHERE id = ?");
  query.bind(1, id);
  if (!query.step()) return std::nullopt;
  return read_event(query);
}

int64_t SqliteStore::start_step(const Lease& lease, const Step& step) {
  std::lock_guard lock(mutex_);
  SqliteTransaction transaction(db_);
  if (!holds_lease(lease)) return 0;
  auto insert = db_.prepare(
      "INSERT INTO steps (job_id, attempt, worker_id, runner, device, status, started_ms, "
      "gpu_mem_used_before, memory_kind) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?)");
  insert.bind(1, lease.job_id).bind(2, lease.attempt).bind(3, lease.worker_id);
  insert.bind(4, step.runner).bind(5, step.device).bind(6, step.started_ms);
  insert.bind(7, step.gpu_mem_used_before).bind(8, step.memory_kind);
  insert.run();
  int64_t id = db_.last_insert_id();
  transaction.commit();
  return id;
}

void SqliteStore::finish_step(const Step& step) {
  std::lock_guard lock(mutex_);
  auto update = db_.prepare(
      "UPDATE steps SET status = ?, device = ?, finished_ms = ?, gpu_mem_used_after = ?, "
      "peak_gpu_mem_used = ?, memory_kind = ?, error = ? WHERE id = ?");
  update.bind(1, step.status).bind(2, step.device).bind(3, step.finished_ms);
  update.bind(4, step.gpu_mem_used_after).bind(5, step.peak_gpu_mem_used);
  update.bind(6, step.memory_kind);
  if (step.error.is_null()) {
    update.bind(7, nullptr);
  } else {
    update.bind(7, dump_json(step.error));
  }
  update.bind(8, step.id);
  update.run();
}

std::vector<Step> SqliteStore::list_steps(const std::string& job_id) {
  std::lock_guard lock(mutex_);
  auto query = db_.prepare(
      "SELECT id, job_id, attempt, worker_id, runner, device, status, started_ms, finished_ms, "
      "gpu_mem_used_before, gpu_mem_used_after, peak_gpu_mem_used, memory_kind, error "
      "FROM steps WHERE job_id = ? ORDER BY id");
  query.bind(1, job_id);
  std::vector<Step> steps;
  while (query.step()) steps.push_back(read_step(query));
  return steps;
}

bool SqliteStore::put_artifact(const Lease& lease, const Artifact& artifact) {
  if (artifact.job_id != lease.job_id) return false;
  std::lock_guard lock(mutex_);
  SqliteTransaction transaction(db_);
  if (!holds_lease(lease)) return false;
  auto upsert = db_.prepare(
      "INSERT INTO artifacts (job_id, attempt, item_index, key, content_type, size, sha256, seed, "
      "width, height, metadata, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
      "ON CONFLICT (job_id, key) DO UPDATE SET attempt = excluded.attempt, "
      "content_type = excluded.content_type, size = excluded.size, sha256 = excluded.sha256, "
      "metadata = excluded.metadata, created_ms = excluded.created_ms");
  upsert.bind(1, artifact.job_id).bind(2, lease.attempt).bind(3, artifact.item_index);
  upsert.bind(4, artifact.key).bind(5, artifact.content_type).bind(6, artifact.size);
  upsert.bind(7, artifact.sha256).bind(8, std::to_string(artifact.seed)).bind(9, artifact.width);
  upsert.bind(10, artifact.height).bind(11, dump_json(artifact.metadata));
  upsert.bind(12, artifact.created_ms ? artifact.created_ms : now_ms());
  upsert.run();
  transaction.commit();
  return true;
}

std::vector<Artifact> SqliteStore::list_artifacts(const std::string& job_id) {
  std::lock_guard lock(mutex_);
  auto query = db_.prepare(
      std::string("SELECT ") + kArtifactColumns +
      " FROM artifacts WHERE job_id = ? ORDER BY item_index, id");
  query.bind(1, job_id);
  std::vector<Artifact> artifacts;
  while (query.step()) artifacts.push_back(read_artifact(query));
  return artifacts;
}

std::optional<Artifact> SqliteStore::find_output_artifact(const std::string& subfolder,
                                                          const std::string& filename) {
  std::lock_guard lock(mutex_);
  auto query = db_.prepare(
      std::string("SELECT ") + kArtifactColumns +
      " FROM artifacts WHERE json_extract(metadata, '$.filename') = ? AND "
      "json_extract(metadata, '$.subfolder') = ? ORDER BY created_ms DESC, id DESC LIMIT 1");
  query.bind(1, filename).bind(2, subfolder);
  if (!query.step()) return std::nullopt;
  return read_artifact(query);
}

std::vector<RunTiming> SqliteStore::recent_run_timings(const std::string& model_id, int limit) {
  std::lock_guard lock(mutex_);
  auto query = db_.prepare(
      "SELECT json_extract(j.spec, '$.width'), json_extract(j.spec, '$.height'), "
      "json_extract(j.spec, '$.steps'), json_extract(j.spec, '$.count'), "
      "s.finished_ms - s.started_ms FROM steps s JOIN jobs j ON j.id = s.job_id "
      "WHERE j.type = 'generate' AND json_extract(j.spec, '$.model_id') = ? "
      "AND s.status = 'succeeded' AND s.attempt = 1 ORDER BY s.finished_ms DESC LIMIT ?");
  query.bind(1, model_id).bind(2, limit);
  std::vector<RunTiming> timings;
  while (query.step()) {
    timings.push_back({model_id, static_cast<int>(query.column_int(0)),
                       static_cast<int>(query.column_int(1)), static_cast<int>(query.column_int(2)),
                       static_cast<int>(query.column_int(3)), query.column_int(4)});
  }
  return timings;
}

void SqliteStore::upsert_model(const Model& model) {
  std::lock_guard lock(mutex_);
  const int64_t now = now_ms();
  Model row = model;
  row.updated_ms = now;
  auto upsert = db_.prepare(
      "INSERT INTO models (id, kind, family, installed, enabled, record, created_ms, updated_ms) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, "
      "family = excluded.family, installed = excluded.installed, enabled = excluded.enabled, "
      "record = json_set(excluded.record, '$.created_ms', models.created_ms), "
      "updated_ms = excluded.updated_ms");
  row.created_ms = model.created_ms ? model.created_ms : now;
  upsert.bind(1, row.id).bind(2, row.kind).bind(3, row.family);
  upsert.bind(4, int64_t{row.installed}).bind(5, int64_t{row.enabled});
  upsert.bind(6, dump_json(model_to_json(row))).bind(7, row.created_ms).bind(8, now);
  upsert.run();
}

std::optional<Model> SqliteStore::get_model(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto query = db_.prepare("SELECT record FROM models WHERE id = ?");
  query.bind(1, id);
  if (!query.step()) return std::nullopt;
  return model_from_json(json::parse(query.column_text(0)));
}

std::vector<Model> SqliteStore::list_models() {
  std::lock_guard lock(mutex_);
  auto query = db_.prepare("SELECT record FROM models ORDER BY id");
  std::vector<Model> models;
  while (query.step()) models.push_back(model_from_json(json::parse(query.column_text(0))));
  return models;
}

bool SqliteStore::delete_model(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto remove = db_.prepare("DELETE FROM models WHERE id = ?");
  remove.bind(1, id);
  remove.run();
  return remove.changes() > 0;
}

namespace {

constexpr const char* kApiKeyColumns =
    "id, name, user_name, scope, secret_hash, created_ms, revoked_ms, jobs_per_minute, "
    "max_concurrent_jobs, webhook_secret";

ApiKeyRecord read_api_key(const SqliteStatement& row) {
  return {row.column_text(0), row.column_text(1), row.column_text(2),
          row.column_text(3), row.column_text(4), row.column_int(5),
          row.column_int(6),  static_cast<int>(row.column_int(7)), static_cast<int>(row.column_int(8)),
          row.column_text(9)};
}

}  // namespace

void SqliteStore::create_api_key(const ApiKeyRecord& key) {
  std::lock_guard lock(mutex_);
  SqliteTransaction transaction(db_);
  auto existing = db_.prepare("SELECT 1 FROM api_keys WHERE id = ? OR secret_hash = ?");
  existing.bind(1, key.id).bind(2, key.secret_hash);
  if (existing.step()) {
    throw Error(ErrorCode::kConflict, "an API key with id '" + key.id + "' already exists");
  }
  auto insert = db_.prepare(std::string("INSERT INTO api_keys (") + kApiKeyColumns +
                            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  insert.bind(1, key.id).bind(2, key.name).bind(3, key.user).bind(4, key.scope);
  insert.bind(5, key.secret_hash).bind(6, key.created_ms ? key.created_ms : now_ms());
  insert.bind(7, key.revoked_ms).bind(8, key.jobs_per_minute).bind(9, key.max_concurrent_jobs);
  insert.bind(10, key.webhook_secret);
  insert.run();
  transaction.commit();
}

std::vector<ApiKeyRecord> SqliteStore::list_api_keys() {
  std::lock_guard lock(mutex_);
  auto query = db_.prepare(std::string("SELECT ") + kApiKeyColumns +
                           " FROM api_keys ORDER BY created_ms, id");
  std::vector<ApiKeyRecord> keys;
  while (query.step()) keys.push_back(read_api_key(query));
  return keys;
}

std::optional<ApiKeyRecord> SqliteStore::find_api_key(const std::string& secret_hash) {
  std::lock_guard lock(mutex_);
  auto query = db_.prepare(std::string("SELECT ") + kApiKeyColumns +
                           " FROM api_keys WHERE secret_hash = ?");
  query.bind(1, secret_hash);
  if (!query.step()) return std::nullopt;
  return read_api_key(query);
}

std::optional<ApiKeyRecord> SqliteStore::get_api_key(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto query = db_.prepare(std::string("SELECT ") + kApiKeyColumns + " FROM api_keys WHERE id = ?");
  query.bind(1, id);
  if (!query.step()) return std::nullopt;
  return read_api_key(query);
}

bool SqliteStore::revoke_api_key(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto revoke = db_.prepare(
      "UPDATE api_keys SET revoked_ms = CASE WHEN revoked_ms = 0 THEN ? ELSE revoked_ms END "
      "WHERE id = ?");
  revoke.bind(1, now_ms()).bind(2, id);
  revoke.run();
  return revoke.changes() > 0;
}

OwnerJobCounts SqliteStore::count_owner_jobs(const std::string& owner, int64_t since_ms) {
  std::lock_guard lock(mutex_);
  auto recent = db_.prepare(
      "SELECT COUNT(*), COALESCE(MIN(created_ms), 0) FROM jobs WHERE owner = ? AND created_ms >= ?");
  recent.bind(1, owner).bind(2, since_ms);
  recent.step();
  OwnerJobCounts counts{recent.column_int(0), 0, recent.column_int(1)};
  auto unfinished = db_.prepare(
      "SELECT COUNT(*) FROM jobs WHERE owner = ? AND status IN ('queued', 'running')");
  unfinished.bind(1, owner);
  unfinished.step();
  counts.unfinished = unfinished.column_int(0);
  return counts;
}

bool SqliteStore::has_api_keys() {
  std::lock_guard lock(mutex_);
  auto query = db_.prepare("SELECT 1 FROM api_keys LIMIT 1");
  return query.step();
}

void SqliteStore::append_audit(const AuditEntry& entry) {
  std::lock_guard lock(mutex_);
  auto insert = db_.prepare(
      "INSERT INTO audit_log (created_ms, actor, action, target, details) VALUES (?, ?, ?, ?, ?)");
  insert.bind(1, entry.created_ms ? entry.created_ms : now_ms()).bind(2, entry.actor);
  insert.bind(3, entry.action).bind(4, entry.target).bind(5, dump_json(entry.details));
  insert.run();
}

std::vector<AuditEntry> SqliteStore::list_audit(int limit) {
  std::lock_guard lock(mutex_);
  auto query = db_.prepare(
      "SELECT id, created_ms, actor, action, target, details FROM audit_log ORDER BY id DESC "
      "LIMIT ?");
  query.bind(1, limit);
  std::vector<AuditEntry> entries;
  while (query.step()) {
    entries.push_back({query.column_int(0), query.column_int(1), query.column_text(2),
                       query.column_text(3), query.column_text(4),
                       json::parse(query.column_text(5))});
  }
  return entries;
}

void SqliteStore::ping() {
  std::lock_guard lock(mutex_);
  auto query = db_.prepare("SELECT COUNT(*) FROM jobs WHERE 0");
  query.step();
}

bool is_postgres_url(const std::string& database_url) {
  return database_url.rfind("postgres://", 0) == 0 || database_url.rfind("postgresql://", 0) == 0;
}

std::unique_ptr<Store> open_store(const std::string& database_url) {
  constexpr std::string_view kSqlite = "sqlite://";
  if (database_url.rfind(kSqlite, 0) == 0) {
    std::string path = database_url.substr(kSqlite.size());
    if (path.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "DREAMFORGE_DATABASE_URL: sqlite URL needs a path (sqlite:///path/to/db.sqlite3)");
    }
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    return std::make_unique<SqliteStore>(path);
  }
  if (is_postgres_url(database_url)) return std::make_unique<PostgresStore>(database_url);
  throw Error(ErrorCode::kInvalidArgument,
              "DREAMFORGE_DATABASE_URL: unsupported database URL '" + database_url +
                  "' (this build knows sqlite:///path and postgres://user@host:port/database)");
}

}  // namespace df::store

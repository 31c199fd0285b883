// The Store on PostgreSQL: jobs, the database queue (SKIP LOCKED claims with leases), events,
// steps, artifacts and models. Every write a worker makes locks its job row and checks the lease in
// the same statement, and every event insert locks its job's row first, so one job's event ids
// become visible in increasing order (a stream that resumes after id N misses nothing).
#include "store/postgres_store.h"

#include <algorithm>

#include "core/error.h"
#include "core/ids.h"
#include "core/json_text.h"
#include "store/postgres_migrations.h"
#include "store/store_events.h"

namespace df::store {
namespace {

using nlohmann::json;

constexpr const char* kJobColumns =
    "id, type, status, spec, idempotency_key, request_hash, priority, attempts, max_attempts, "
    "progress, items, error, worker_id, lease_expires_ms, run_after_ms, cancel_requested, "
    "created_ms, updated_ms, started_ms, finished_ms, schema_version, owner, webhook_url, "
    "webhook_events, webhook_key_id";

// Locks the job $1 while worker $2 holds it at attempt $3 (no row otherwise); prefixes a statement
// that reads the row `holder`.
constexpr const char* kLockLeasedJob =
    "WITH holder AS (SELECT id FROM jobs WHERE id = $1 AND status = 'running' AND worker_id = $2 "
    "AND attempts = $3::int FOR NO KEY UPDATE) ";

// The lease condition of worker updates to the job $1 (worker $2, attempt $3).
constexpr const char* kLeaseHeld = " WHERE id = $1 AND status = 'running' AND worker_id = $2 "
                                   "AND attempts = $3::int";

json parse_or_null(const std::string& text) { return text.empty() ? json() : json::parse(text); }

PgParam json_param(const json& value) {
  return value.is_null() ? std::nullopt : pg_param(dump_json(value));
}

Job read_job(const PgResult& rows, int row) {
  Job job;
  job.id = rows.text(row, 0);
  job.type = rows.text(row, 1);
  job.status = job_status_from_name(rows.text(row, 2));
  job.spec = json::parse(rows.text(row, 3));
  job.idempotency_key = rows.text(row, 4);
  job.request_hash = rows.text(row, 5);
  job.priority = static_cast<int>(rows.integer(row, 6));
  job.attempts = static_cast<int>(rows.integer(row, 7));
  job.max_attempts = static_cast<int>(rows.integer(row, 8));
  job.progress = rows.real(row, 9);
  for (const auto& item : json::parse(rows.text(row, 10))) {
    job.items.push_back(item_from_json(item));
  }
  job.error = parse_or_null(rows.text(row, 11));
  job.worker_id = rows.text(row, 12);
  job.lease_expires_ms = rows.integer(row, 13);
  job.run_after_ms = rows.integer(row, 14);
  job.cancel_requested = rows.boolean(row, 15);
  job.created_ms = rows.integer(row, 16);
  job.updated_ms = rows.integer(row, 17);
  job.started_ms = rows.integer(row, 18);
  job.finished_ms = rows.integer(row, 19);
  job.schema_version = static_cast<int>(rows.integer(row, 20));
  job.owner = rows.text(row, 21);
  job.webhook = {rows.text(row, 22), split_webhook_events(rows.text(row, 23)), rows.text(row, 24)};
  return job;
}

std::vector<Job> read_jobs(const PgResult& rows) {
  std::vector<Job> jobs;
  for (int row = 0; row < rows.rows(); ++row) jobs.push_back(read_job(rows, row));
  return jobs;
}

// The columns read_event() reads, in its order.
constexpr const char* kEventColumns =
    "id, job_id, type, code, item_index, message, plain, data, created_ms";

Event read_event(const PgResult& rows, int row) {
  Event event;
  event.id = rows.integer(row, 0);
  event.job_id = rows.text(row, 1);
  event.type = rows.text(row, 2);
  event.code = rows.text(row, 3);
  if (!rows.is_null(row, 4)) event.item_index = static_cast<int>(rows.integer(row, 4));
  event.message = rows.text(row, 5);
  event.plain = rows.text(row, 6);
  event.data = json::parse(rows.text(row, 7));
  event.created_ms = rows.integer(row, 8);
  return event;
}

Step read_step(const PgResult& rows, int row) {
  Step step;
  step.id = rows.integer(row, 0);
  step.job_id = rows.text(row, 1);
  step.attempt = static_cast<int>(rows.integer(row, 2));
  step.worker_id = rows.text(row, 3);
  step.runner = rows.text(row, 4);
  step.device = rows.text(row, 5);
  step.status = rows.text(row, 6);
  step.started_ms = rows.integer(row, 7);
  step.finished_ms = rows.integer(row, 8);
  step.gpu_mem_used_before = rows.integer(row, 9);
  step.gpu_mem_used_after = rows.integer(row, 10);
  step.peak_gpu_mem_used = rows.integer(row, 11);
  step.memory_kind = rows.text(row, 12);
  step.error = parse_or_null(rows.text(row, 13));
  return step;
}

// The columns read_artifact() reads, in its order.
constexpr const char* kArtifactColumns =
    "id, job_id, attempt, item_index, key, content_type, size, sha256, seed, width, height, "
    "metadata, created_ms";

Artifact read_artifact(const PgResult& rows, int row) {
  Artifact artifact;
  artifact.id = rows.integer(row, 0);
  artifact.job_id = rows.text(row, 1);
  artifact.attempt = static_cast<int>(rows.integer(row, 2));
  artifact.item_index = static_cast<int>(rows.integer(row, 3));
  artifact.key = rows.text(row, 4);
  artifact.content_type = rows.text(row, 5);
  artifact.size = rows.integer(row, 6);
  artifact.sha256 = rows.text(row, 7);
  artifact.seed = std::stoull(rows.text(row, 8));
  artifact.width = static_cast<int>(rows.integer(row, 9));
  artifact.height = static_cast<int>(rows.integer(row, 10));
  artifact.metadata = json::parse(rows.text(row, 11));
  artifact.created_ms = rows.integer(row, 12);
  return artifact;
}

Model read_model(const PgResult& rows, int row) {
  Model model = model_from_json(json::parse(rows.text(row, 0)));
  model.created_ms = rows.integer(row, 1);  // the first registration's, kept by every upsert
  return model;
}

std::string items_text(const std::vector<JobItem>& items) {
  json array = json::array();
  for (const auto& item : items) array.push_back(item_to_json(item));
  return dump_json(array);
}

// The spec's model (what run timings are looked up by), NULL when it names none.
PgParam spec_model_id(const json& spec) {
  const auto found = spec.find("model_id");
  if (found == spec.end() || !found->is_string()) return std::nullopt;
  return found->get<std::string>();
}

// A whole number from the spec (0 when missing or not a number), as SQLite's json_extract reads it.
int spec_int(const json& spec, const char* key) {
  const auto found = spec.find(key);
  return found != spec.end() && found->is_number() ? static_cast<int>(found->get<double>()) : 0;
}

// Appends the event, with its webhook delivery, to a job whose row the current transaction has
// locked.
int64_t insert_event(PgConnection& db, const Event& event) {
  const int64_t id =
      db.query(
            "INSERT INTO events (job_id, type, code, item_index, message, plain, data, created_ms) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            event.job_id, event.type, event.code, event.item_index, event.message, event.plain,
            dump_json(event.data), event.created_ms ? event.created_ms : now_ms())
          .integer(0, 0);
  enqueue_postgres_webhook(db, event, id);
  return id;
}

std::optional<Job> find_job(PgConnection& db, const std::string& where, const PgParam& value) {
  const auto rows =
      db.exec(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE " + where, {value});
  if (rows.rows() == 0) return std::nullopt;
  return read_job(rows, 0);
}

}  // namespace

PostgresStore::PostgresStore(const std::string& url, size_t max_connections)
    : pool_(url, max_connections) {
  auto db = pool_.borrow();
  migrate_postgres(*db);
}

CreateJobResult PostgresStore::create_job(const Job& job) {
  const Event queued = job_queued_event(job);
  auto db = pool_.borrow();
  // One statement, so one round trip and one transaction, inserts the job and its job_queued
  // event. It waits for a concurrent insert of the same key or id and then inserts nothing if that
  // one committed: exactly one job per key, the others read it back below.
  const auto inserted = db->query(
      std::string("WITH created AS (INSERT INTO jobs (id, type, status, spec, model_id, "
                  "idempotency_key, request_hash, priority, max_attempts, items, created_ms, "
                  "updated_ms, schema_version, owner, webhook_url, webhook_events, webhook_key_id) "
                  "VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $17, $18, "
                  "$19, $20) ON CONFLICT DO NOTHING RETURNING ") +
          kJobColumns +
          "), queued AS (INSERT INTO events (job_id, type, message, plain, data, created_ms) "
          "SELECT id, $12::text, $13::text, $14::text, $15::text, $16::bigint FROM created) "
          "SELECT " + kJobColumns + " FROM created",
      job.id, job.type, dump_json(job.spec), spec_model_id(job.spec),
      job.idempotency_key.empty() ? PgParam() : pg_param(job.idempotency_key), job.request_hash,
      job.priority, job.max_attempts, items_text(job.items), job.created_ms, job.schema_version,
      queued.type, queued.message, queued.plain, dump_json(queued.data),
      queued.created_ms ? queued.created_ms : now_ms(), job.owner, job.webhook.url,
      join_webhook_events(job.webhook.events), job.webhook.key_id);
  if (inserted.rows() == 1) return {read_job(inserted, 0), true};
  if (!job.idempotency_key.empty()) {
    if (auto earlier = find_job(*db, "idempotency_key = $1", job.idempotency_key)) {
      if (earlier->request_hash != job.request_hash) {
        throw Error(ErrorCode::kConflict,
                    "Idempotency-Key '" + job.idempotency_key +
                        "' was already used with a different request body",
                    {{"job_id", earlier->id}});
      }
      return {*earlier, false};
    }
  }
  throw Error(ErrorCode::kConflict, "a job with id '" + job.id + "' already exists",
              {{"job_id", job.id}});
}

std::optional<Job> PostgresStore::find_job_by_idempotency_key(const std::string& key) {
  auto db = pool_.borrow();
  return find_job(*db, "idempotency_key = $1", key);
}

std::optional<Job> PostgresStore::get_job(const std::string& id) {
  auto db = pool_.borrow();
  return find_job(*db, "id = $1", id);
}

JobPage PostgresStore::list_jobs(const JobFilter& filter) {
  if (filter.limit < 1) {
    throw Error(ErrorCode::kInvalidArgument, "a page of jobs holds at least one job",
                {{"limit", filter.limit}});
  }
  std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs WHERE TRUE";
  std::vector<PgParam> params;
  if (filter.status) {
    params.push_back(pg_param(job_status_name(*filter.status)));
    sql += " AND status = $" + std::to_string(params.size());
  }
  if (filter.owner) {
    params.push_back(pg_param(*filter.owner));
    sql += " AND owner = $" + std::to_string(params.size());
  }
  // Ordered by creation time; the id (bytewise) only breaks ties, as in the SQLite store.
  if (!filter.cursor.empty()) {
    params.push_back(pg_param(filter.cursor));
    sql += " AND (created_ms, id) < (SELECT created_ms, id FROM jobs WHERE id = $" +
           std::to_string(params.size()) + ")";
  }
  params.push_back(pg_param(filter.limit + 1));
  sql += " ORDER BY created_ms DESC, id DESC LIMIT $" + std::to_string(params.size());
  auto db = pool_.borrow();
  JobPage page{read_jobs(db->exec(sql, params)), ""};
  if (static_cast<int>(page.jobs.size()) > filter.limit) {
    page.jobs.pop_back();
    page.next_cursor = page.jobs.back().id;
  }
  return page;
}

std::map<std::string, int64_t> PostgresStore::count_jobs_by_status() {
  std::map<std::string, int64_t> counts;
  for (auto status : {JobStatus::kQueued, JobStatus::kRunning, JobStatus::kSucceeded,
                      JobStatus::kFailed, JobStatus::kCanceled}) {
    counts[std::string(job_status_name(status))] = 0;
  }
  auto db = pool_.borrow();
  const auto rows = db->exec("SELECT status, COUNT(*) FROM jobs GROUP BY status");
  for (int row = 0; row < rows.rows(); ++row) counts[rows.text(row, 0)] = rows.integer(row, 1);
  return counts;
}

int64_t PostgresStore::count_jobs(JobStatus status) {
  auto db = pool_.borrow();
  return db->query("SELECT COUNT(*) FROM jobs WHERE status = $1", job_status_name(status))
      .integer(0, 0);
}

std::vector<Job> PostgresStore::history(int max_items) {
  auto db = pool_.borrow();
  auto jobs = read_jobs(db->query(
      std::string("SELECT ") + kJobColumns +
          " FROM jobs WHERE status IN ('succeeded', 'failed', 'canceled') AND type <> '" +
          kModelDownloadJobType + "' AND NOT "
          "hidden_from_history ORDER BY finished_ms DESC, id DESC LIMIT $1",
      max_items < 0 ? PgParam() : pg_param(max_items)));
  std::reverse(jobs.begin(), jobs.end());
  return jobs;
}

void PostgresStore::clear_history(const std::vector<std::string>& job_ids) {
  auto db = pool_.borrow();
  if (job_ids.empty()) {
    db->exec(
        "UPDATE jobs SET hidden_from_history = TRUE WHERE status IN ('succeeded', 'failed', "
        "'canceled')");
    return;
  }
  PgTransaction transaction(*db);
  for (const auto& id : job_ids) {
    db->query("UPDATE jobs SET hidden_from_history = TRUE WHERE id = $1", id);
  }
  transaction.commit();
}

namespace {
// Which jobs a worker may claim at `now` ($3): queued and due, or running with an expired lease.
constexpr const char* kClaimable =
    "((status = 'queued' AND run_after_ms <= $3) OR "
    "(status = 'running' AND lease_expires_ms < $3))";
// Marks the job chosen by the WHERE clause that follows as running under worker $1, lease until $2.
constexpr const char* kClaimUpdate =
    "UPDATE jobs SET status = 'running', worker_id = $1, attempts = attempts + 1, "
    "lease_expires_ms = $2, updated_ms = $3, started_ms = CASE WHEN started_ms = 0 THEN $3 ELSE "
    "started_ms END WHERE ";
}  // namespace

std::optional<Job> PostgresStore::claim_job(const std::string& worker_id, int64_t lease_ms) {
  return claim_next(" <> ", worker_id, lease_ms);
}

std::optional<Job> PostgresStore::claim_model_download(const std::string& worker_id,
                                                       int64_t lease_ms) {
  return claim_next(" = ", worker_id, lease_ms);
}

std::optional<Job> PostgresStore::claim_next(const char* download_test,
                                             const std::string& worker_id, int64_t lease_ms) {
  const int64_t now = now_ms();
  auto db = pool_.borrow();
  // Rows another worker is claiming right now are skipped, not waited for.
  const auto claimed = db->query(
      std::string(kClaimUpdate) + "id = (SELECT id FROM jobs WHERE " + kClaimable + " AND type" +
          download_test + "'" + kModelDownloadJobType +
          "' ORDER BY priority DESC, created_ms, id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING " +
          kJobColumns,
      worker_id, now + lease_ms, now);
  if (claimed.rows() == 0) return std::nullopt;
  return read_job(claimed, 0);
}

std::optional<Job> PostgresStore::claim_job_by_id(const std::string& job_id,
                                                  const std::string& worker_id, int64_t lease_ms) {
  const int64_t now = now_ms();
  auto db = pool_.borrow();
  const auto claimed = db->query(std::string(kClaimUpdate) + "id = $4 AND " + kClaimable +
                                     " RETURNING " + kJobColumns,
                                 worker_id, now + lease_ms, now, job_id);
  if (claimed.rows() == 0) return std::nullopt;
  return read_job(claimed, 0);
}

std::vector<DispatchableJob> PostgresStore::dispatchable_jobs(const std::string& after_id,
                                                              int limit) {
  auto db = pool_.borrow();
  const auto rows = db->query(
      std::string("SELECT id, priority, run_after_ms FROM jobs WHERE id > $1 AND (status = "
                  "'queued' OR (status = 'running' AND lease_expires_ms < $2)) AND type <> '") +
          kModelDownloadJobType + "' ORDER BY id LIMIT $3",
      after_id, now_ms(), limit);
  std::vector<DispatchableJob> jobs;
  for (int row = 0; row < rows.rows(); ++row) {
    jobs.push_back(
        {rows.text(row, 0), static_cast<int>(rows.integer(row, 1)), rows.integer(row, 2)});
  }
  return jobs;
}

bool PostgresStore::renew_lease(const Lease& lease, int64_t lease_ms) {
  auto db = pool_.borrow();
  return db->query(std::string("UPDATE jobs SET lease_expires_ms = $4") + kLeaseHeld,
                   lease.job_id, lease.worker_id, lease.attempt, now_ms() + lease_ms)
             .affected() == 1;
}

bool PostgresStore::save_items(const Lease& lease, const std::vector<JobItem>& items,
                               double progress) {
  auto db = pool_.borrow();
  return db->query(std::string("UPDATE jobs SET items = $4, progress = $5, updated_ms = $6") +
                       kLeaseHeld,
                   lease.job_id, lease.worker_id, lease.attempt, items_text(items), progress,
                   now_ms())
             .affected() == 1;
}

bool PostgresStore::finish_job(const Lease& lease, JobStatus status, const json& error,
                               const Event& terminal_event) {
  if (terminal_event.job_id != lease.job_id) return false;
  const int64_t now = now_ms();
  auto db = pool_.borrow();
  PgTransaction transaction(*db);
  const auto ended = db->query(
      std::string("UPDATE jobs SET status = $4, error = $5, progress = CASE WHEN $6::boolean "
                  "THEN 1 ELSE progress END, lease_expires_ms = 0, updated_ms = $7, "
                  "finished_ms = $7") +
          kLeaseHeld,
      lease.job_id, lease.worker_id, lease.attempt, job_status_name(status), json_param(error),
      status == JobStatus::kSucceeded, now);
  if (ended.affected() != 1) return false;
  insert_event(*db, terminal_event);
  transaction.commit();
  return true;
}

bool PostgresStore::requeue_job(const Lease& lease, int64_t run_after_ms, const json& error,
                                bool attempt_counts) {
  auto db = pool_.borrow();
  return db->query(std::string("UPDATE jobs SET status = 'queued', error = $4, worker_id = NULL, "
                               "lease_expires_ms = 0, run_after_ms = $5, updated_ms = $6, "
                               "max_attempts = max_attempts + $7") +
                       kLeaseHeld,
                   lease.job_id, lease.worker_id, lease.attempt, dump_json(error), run_after_ms,
                   now_ms(), attempt_counts ? 0 : 1)
             .affected() == 1;
}

CancelOutcome PostgresStore::cancel_job(const std::string& id) {
  auto db = pool_.borrow();
  PgTransaction transaction(*db);
  auto job = find_job(*db, "id = $1 FOR UPDATE", id);
  if (!job) throw Error(ErrorCode::kNotFound, "no job with id '" + id + "'");
  if (is_terminal(job->status)) return CancelOutcome::kAlreadyFinished;
  const int64_t now = now_ms();
  if (job->status == JobStatus::kQueued) {
    db->query(
        "UPDATE jobs SET status = 'canceled', cancel_requested = TRUE, error = $2, "
        "updated_ms = $3, finished_ms = $3 WHERE id = $1",
        id, dump_json(canceled_while_queued_error()), now);
    insert_event(*db, canceled_while_queued_event(*job));
    transaction.commit();
    return CancelOutcome::kCanceled;
  }
  db->query("UPDATE jobs SET cancel_requested = TRUE, updated_ms = $2 WHERE id = $1", id, now);
  transaction.commit();
  return CancelOutcome::kRequested;
}

int64_t PostgresStore::append_event(const Event& event, const Lease* lease) {
  if (lease != nullptr && event.job_id != lease->job_id) return 0;
  auto db = pool_.borrow();
  // An event a webhook may want is written with its delivery, in one transaction.
  std::optional<PgTransaction> transaction;
  if (webhook_event_name(event)) transaction.emplace(*db);
  // Locks the job's row (when the lease holds, if one is given) before the id is drawn.
  const auto inserted = db->query(
      "WITH holder AS (SELECT id FROM jobs WHERE id = $1 AND ($2::text IS NULL OR "
      "(status = 'running' AND worker_id = $2 AND attempts = $3::int)) FOR NO KEY UPDATE) "
      "INSERT INTO events (job_id, type, code, item_index, message, plain, data, created_ms) "
      "SELECT holder.id, $4, $5, $6::int, $7, $8, $9, $10::bigint FROM holder RETURNING id",
      event.job_id, lease ? pg_param(lease->worker_id) : PgParam(),
      lease ? pg_param(lease->attempt) : PgParam(), event.type, event.code, event.item_index,
      event.message, event.plain, dump_json(event.data),
      event.created_ms ? event.created_ms : now_ms());
  if (inserted.rows() == 1) {
    const int64_t id = inserted.integer(0, 0);
    if (transaction) {
      enqueue_postgres_webhook(*db, event, id);
      transaction->commit();
    }
    return id;
  }
  if (lease != nullptr) return 0;
  throw Error(ErrorCode::kNotFound, "no job with id '" + event.job_id + "'");
}

std::optional<Event> PostgresStore::get_event(int64_t id) {
  auto db = pool_.borrow();
  const auto rows = db->query(
      std::string("SELECT ") + kEventColumns + " FROM events "
      "WHERE id = $1",
      id);
  if (rows.rows() == 0) return std::nullopt;
  return read_event(rows, 0);
}

std::vector<Event> PostgresStore::events_after(const std::string& job_id, int64_t after_id,
                                               int limit) {
  auto db = pool_.borrow();
  const auto rows = db->query(
      std::string("SELECT ") + kEventColumns + " FROM events "
      "WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3",
      job_id, after_id, limit);
  std::vector<Event> events;
  for (int row = 0; row < rows.rows(); ++row) events.push_back(read_event(rows, row));
  return events;
}

int64_t PostgresStore::start_step(const Lease& lease, const Step& step) {
  auto db = pool_.borrow();
  const auto inserted = db->query(
      std::string(kLockLeasedJob) +
          "INSERT INTO steps (job_id, attempt, worker_id, runner, device, status, started_ms, "
          "gpu_mem_used_before, memory_kind) SELECT holder.id, $3::int, $2, $4, $5, 'running', "
          "$6::bigint, $7::bigint, $8 FROM holder RETURNING id",
      lease.job_id, lease.worker_id, lease.attempt, step.runner, step.device, step.started_ms,
      step.gpu_mem_used_before, step.memory_kind);
  return inserted.rows() == 1 ? inserted.integer(0, 0) : 0;
}

void PostgresStore::finish_step(const Step& step) {
  auto db = pool_.borrow();
  db->query(
      "UPDATE steps SET status = $2, device = $3, finished_ms = $4, gpu_mem_used_after = $5, "
      "peak_gpu_mem_used = $6, memory_kind = $7, error = $8 WHERE id = $1",
      step.id, step.status, step.device, step.finished_ms, step.gpu_mem_used_after,
      step.peak_gpu_mem_used, step.memory_kind, json_param(step.error));
}

std::vector<Step> PostgresStore::list_steps(const std::string& job_id) {
  auto db = pool_.borrow();
  const auto rows = db->query(
      "SELECT id, job_id, attempt, worker_id, runner, device, status, started_ms, finished_ms, "
      "gpu_mem_used_before, gpu_mem_used_after, peak_gpu_mem_used, memory_kind, error "
      "FROM steps WHERE job_id = $1 ORDER BY id",
      job_id);
  std::vector<Step> steps;
  for (int row = 0; row < rows.rows(); ++row) steps.push_back(read_step(rows, row));
  return steps;
}

bool PostgresStore::put_artifact(const Lease& lease, const Artifact& artifact) {
  if (artifact.job_id != lease.job_id) return false;
  auto db = pool_.borrow();
  return db->query(
                 std::string(kLockLeasedJob) +
                     "INSERT INTO artifacts (job_id, attempt, item_index, key, content_type, size, "
                     "sha256, seed, width, height, metadata, created_ms) SELECT holder.id, "
                     "$3::int, $4::int, $5, $6, $7::bigint, $8, $9, $10::int, $11::int, $12, "
                     "$13::bigint FROM holder ON CONFLICT (job_id, key) DO UPDATE SET "
                     "attempt = excluded.attempt, content_type = excluded.content_type, "
                     "size = excluded.size, sha256 = excluded.sha256, "
                     "metadata = excluded.metadata, created_ms = excluded.created_ms RETURNING id",
                 lease.job_id, lease.worker_id, lease.attempt, artifact.item_index, artifact.key,
                 artifact.content_type, artifact.size, artifact.sha256,
                 std::to_string(artifact.seed), artifact.width, artifact.height,
                 dump_json(artifact.metadata), artifact.created_ms ? artifact.created_ms : now_ms())
             .rows() == 1;
}

std::vector<Artifact> PostgresStore::list_artifacts(const std::string& job_id) {
  auto db = pool_.borrow();
  const auto rows = db->query(
      std::string("SELECT ") + kArtifactColumns +
          " FROM artifacts WHERE job_id = $1 ORDER BY item_index, id",
      job_id);
  std::vector<Artifact> artifacts;
  for (int row = 0; row < rows.rows(); ++row) artifacts.push_back(read_artifact(rows, row));
  return artifacts;
}

std::optional<Artifact> PostgresStore::find_output_artifact(const std::string& subfolder,
                                                            const std::string& filename) {
  auto db = pool_.borrow();
  const auto rows = db->query(
      std::string("SELECT ") + kArtifactColumns +
          " FROM artifacts WHERE (metadata::jsonb ->> 'filename') = $1 AND "
          "(metadata::jsonb ->> 'subfolder') = $2 ORDER BY created_ms DESC, id DESC LIMIT 1",
      filename, subfolder);
  if (rows.rows() == 0) return std::nullopt;
  return read_artifact(rows, 0);
}

std::vector<RunTiming> PostgresStore::recent_run_timings(const std::string& model_id, int limit) {
  auto db = pool_.borrow();
  const auto rows = db->query(
      "SELECT j.spec, s.finished_ms - s.started_ms FROM steps s JOIN jobs j ON j.id = s.job_id "
      "WHERE j.type = 'generate' AND j.model_id = $1 AND s.status = 'succeeded' AND "
      "s.attempt = 1 ORDER BY s.finished_ms DESC LIMIT $2",
      model_id, limit);
  std::vector<RunTiming> timings;
  for (int row = 0; row < rows.rows(); ++row) {
    const json spec = json::parse(rows.text(row, 0));
    timings.push_back({model_id, spec_int(spec, "width"), spec_int(spec, "height"),
                       spec_int(spec, "steps"), spec_int(spec, "count"), rows.integer(row, 1)});
  }
  return timings;
}

void PostgresStore::upsert_model(const Model& model) {
  const int64_t now = now_ms();
  Model row = model;
  row.updated_ms = now;
  row.created_ms = model.created_ms ? model.created_ms : now;
  auto db = pool_.borrow();
  db->query(
      "INSERT INTO models (id, kind, family, installed, enabled, record, created_ms, updated_ms) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET "
      "kind = excluded.kind, family = excluded.family, installed = excluded.installed, "
      "enabled = excluded.enabled, record = excluded.record, updated_ms = excluded.updated_ms",
      row.id, row.kind, row.family, row.installed, row.enabled, dump_json(model_to_json(row)),
      row.created_ms, now);
}

std::optional<Model> PostgresStore::get_model(const std::string& id) {
  auto db = pool_.borrow();
  const auto rows = db->query("SELECT record, created_ms FROM models WHERE id = $1", id);
  if (rows.rows() == 0) return std::nullopt;
  return read_model(rows, 0);
}

std::vector<Model> PostgresStore::list_models() {
  auto db = pool_.borrow();
  const auto rows = db->exec("SELECT record, created_ms FROM models ORDER BY id");
  std::vector<Model> models;
  for (int row = 0; row < rows.rows(); ++row) models.push_back(read_model(rows, row));
  return models;
}

bool PostgresStore::delete_model(const std::string& id) {
  auto db = pool_.borrow();
  return db->query("DELETE FROM models WHERE id = $1", id).affected() > 0;
}

namespace {

constexpr const char* kApiKeyColumns =
    "id, name, user_name, scope, secret_hash, created_ms, revoked_ms, jobs_per_minute, "
    "max_concurrent_jobs, webhook_secret";

ApiKeyRecord read_api_key(const PgResult& rows, int row) {
  return {rows.text(row, 0),    rows.text(row, 1),    rows.text(row, 2),
          rows.text(row, 3),    rows.text(row, 4),    rows.integer(row, 5),
          rows.integer(row, 6), static_cast<int>(rows.integer(row, 7)),
          static_cast<int>(rows.integer(row, 8)), rows.text(row, 9)};
}

}  // namespace

void PostgresStore::create_api_key(const ApiKeyRecord& key) {
  auto db = pool_.borrow();
  const auto inserted = db->query(
      std::string("INSERT INTO api_keys (") + kApiKeyColumns +
          ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
      key.id, key.name, key.user, key.scope, key.secret_hash,
      key.created_ms ? key.created_ms : now_ms(), key.revoked_ms, key.jobs_per_minute,
      key.max_concurrent_jobs, key.webhook_secret);
  if (inserted.affected() == 0) {
    throw Error(ErrorCode::kConflict, "an API key with id '" + key.id + "' already exists");
  }
}

std::vector<ApiKeyRecord> PostgresStore::list_api_keys() {
  auto db = pool_.borrow();
  const auto rows = db->exec(std::string("SELECT ") + kApiKeyColumns +
                             " FROM api_keys ORDER BY created_ms, id");
  std::vector<ApiKeyRecord> keys;
  for (int row = 0; row < rows.rows(); ++row) keys.push_back(read_api_key(rows, row));
  return keys;
}

std::optional<ApiKeyRecord> PostgresStore::find_api_key(const std::string& secret_hash) {
  auto db = pool_.borrow();
  const auto rows = db->query(std::string("SELECT ") + kApiKeyColumns +
                                  " FROM api_keys WHERE secret_hash = $1",
                              secret_hash);
  if (rows.rows() == 0) return std::nullopt;
  return read_api_key(rows, 0);
}

std::optional<ApiKeyRecord> PostgresStore::get_api_key(const std::string& id) {
  auto db = pool_.borrow();
  const auto rows =
      db->query(std::string("SELECT ") + kApiKeyColumns + " FROM api_keys WHERE id = $1", id);
  if (rows.rows() == 0) return std::nullopt;
  return read_api_key(rows, 0);
}

bool PostgresStore::revoke_api_key(const std::string& id) {
  auto db = pool_.borrow();
  return db->query("UPDATE api_keys SET revoked_ms = CASE WHEN revoked_ms = 0 THEN $1 "
                   "ELSE revoked_ms END WHERE id = $2",
                   now_ms(), id)
             .affected() > 0;
}

OwnerJobCounts PostgresStore::count_owner_jobs(const std::string& owner, int64_t since_ms) {
  auto db = pool_.borrow();
  // Each count reads its own index: the owner's recent jobs, and the owner's unfinished ones.
  const auto rows = db->query(
      "SELECT COUNT(*), COALESCE(MIN(created_ms), 0), (SELECT COUNT(*) FROM jobs WHERE owner = $1 "
      "AND status IN ('queued', 'running')) FROM jobs WHERE owner = $1 AND created_ms >= $2",
      owner, since_ms);
  return {rows.integer(0, 0), rows.integer(0, 2), rows.integer(0, 1)};
}

bool PostgresStore::has_api_keys() {
  auto db = pool_.borrow();
  return db->exec("SELECT 1 FROM api_keys LIMIT 1").rows() > 0;
}

void PostgresStore::append_audit(const AuditEntry& entry) {
  auto db = pool_.borrow();
  db->query("INSERT INTO audit_log (created_ms, actor, action, target, details) "
            "VALUES ($1, $2, $3, $4, $5)",
            entry.created_ms ? entry.created_ms : now_ms(), entry.actor, entry.action,
            entry.target, dump_json(entry.details));
}

std::vector<AuditEntry> PostgresStore::list_audit(int limit) {
  auto db = pool_.borrow();
  const auto rows = db->query(
      "SELECT id, created_ms, actor, action, target, details FROM audit_log ORDER BY id DESC "
      "LIMIT $1",
      limit);
  std::vector<AuditEntry> entries;
  for (int row = 0; row < rows.rows(); ++row) {
    entries.push_back({rows.integer(row, 0), rows.integer(row, 1), rows.text(row, 2),
                       rows.text(row, 3), rows.text(row, 4), json::parse(rows.text(row, 5))});
  }
  return entries;
}

void PostgresStore::ping() {
  auto db = pool_.borrow();
  db->exec("SELECT 1");
}

}  // namespace df::store

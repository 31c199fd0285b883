// The Store: the durable record of jobs, steps, events and artifacts (SQLite embedded, Postgres at scale).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/job.h"
#include "core/model.h"

namespace df::store {

struct CreateJobResult {
  Job job;
  bool created = false;  // false: an earlier job with the same Idempotency-Key and body
};

struct JobPage {
  std::vector<Job> jobs;
  std::string next_cursor;  // "" on the last page
};

// How long one successful run of a generate job took: the history time estimates learn from.
struct RunTiming {
  std::string model_id;
  int width = 0;
  int height = 0;
  int steps = 0;
  int items = 0;  // images the run made
  int64_t duration_ms = 0;
};

struct JobFilter {
  std::optional<JobStatus> status;
  int limit = 50;
  std::string cursor;  // from the previous page
  std::optional<std::string> owner;  // only this user's jobs
};

// An API key as stored: never the key itself, only its SHA-256.
struct ApiKeyRecord {
  std::string id;           // public, shown by `keys list`, part of the key
  std::string name;         // what the admin called it
  std::string user;         // whose jobs it creates and sees
  std::string scope;        // "admin" | "user"
  std::string secret_hash;  // hex SHA-256 of the whole key
  int64_t created_ms = 0;
  int64_t revoked_ms = 0;   // 0 while valid
  int jobs_per_minute = 0;      // new jobs its user may make per minute (0: no limit)
  int max_concurrent_jobs = 0;  // its user's queued and running jobs at most (0: no limit)
  std::string webhook_secret;   // "whsec_..." signing its jobs' webhooks ("": the configured one)
};

// What a user's limits are checked against.
struct OwnerJobCounts {
  int64_t created_since = 0;  // jobs made at or after the given time
  int64_t unfinished = 0;     // queued or running now
  int64_t oldest_since_ms = 0;  // creation time of the oldest of created_since (0: none)
};

// One admin action, as the audit log keeps it: who (an API key's id or "cli:<unix user>"), what
// ("key.create", "model.remove", ...), on what, and details without secrets.
struct AuditEntry {
  int64_t id = 0;
  int64_t created_ms = 0;
  std::string actor;
  std::string action;
  std::string target;
  nlohmann::json details = nlohmann::json::object();
};

// A message to a job's webhook about one of its events (for progress: the newest of those that
// came while it waited), kept until it is delivered, given up, or superseded by a newer progress
// message. The store writes it in the transaction of the event it tells of.
struct WebhookDelivery {
  std::string id;  // the message id (webhook-id), the same on every attempt
  std::string job_id;
  std::string event;     // start | progress | item | completed
  int64_t event_id = 0;  // the event it tells of
  std::string url;
  std::string status = "pending";  // pending | delivered | failed | superseded
  int attempts = 0;                // claims so far; the fencing token of the current one
  int64_t next_attempt_ms = 0;
  int64_t lease_until_ms = 0;    // a dispatcher is sending it until then
  int64_t first_attempt_ms = 0;  // 0 before the first attempt
  int64_t delivered_ms = 0;
  int last_status_code = 0;  // the receiver's last answer (0: none, the attempt failed before)
  std::string last_error;
  std::string payload;  // the body, fixed by the first attempt ("" before it)
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

// What one attempt at a delivery came to.
struct WebhookAttempt {
  std::string delivery_id;
  int attempt = 0;             // the claim's attempts (a later claim's record wins)
  std::string status;          // pending (again at next_attempt_ms) | delivered | failed
  int64_t next_attempt_ms = 0;
  int status_code = 0;
  std::string error;
  std::string payload;  // kept when the delivery has none yet
};

// Progress deliveries of one job are at least this far apart (their first attempts).
constexpr int64_t kProgressWebhookIntervalMs = 500;

// Jobs of this type fetch a model: the service's download threads claim them
// (claim_model_download), never a worker's claim_job or a queue's dispatch, and ComfyUI's history
// does not show them.
inline constexpr const char* kModelDownloadJobType = "model_download";

enum class CancelOutcome { kCanceled, kRequested, kAlreadyFinished };

// A job a queue should be holding: queued (due at run_after_ms), or running with an expired lease.
struct DispatchableJob {
  std::string job_id;
  int priority = 0;
  int64_t run_after_ms = 0;
};

// Every write a worker makes takes its Lease and succeeds only for the lease's job while that job
// is still running under that worker and attempt (fencing); otherwise it changes nothing and
// returns false.
class Store {
 public:
  virtual ~Store() = default;

  // Inserts the job, or returns the job created earlier with the same idempotency key when the
  // request hash matches; throws Error(kConflict) when it does not. Exactly one job per key under
  // any concurrency. Appends the job_queued event.
  virtual CreateJobResult create_job(const Job& job) = 0;
  virtual std::optional<Job> get_job(const std::string& id) = 0;
  // The job created with this Idempotency-Key (as stored: scoped to its user), if any.
  virtual std::optional<Job> find_job_by_idempotency_key(const std::string& key) = 0;
  // Newest first; throws Error(kInvalidArgument) for a limit below 1.
  virtual JobPage list_jobs(const JobFilter& filter) = 0;
  virtual std::map<std::string, int64_t> count_jobs_by_status() = 0;
  // Jobs with `status`; reads only those jobs (cheap for the queue however long the history).
  virtual int64_t count_jobs(JobStatus status) = 0;
  // Finished jobs (succeeded, failed, canceled; no model downloads) still in ComfyUI's history, the `max_items` most
  // recently finished, oldest first (all of them when max_items < 0).
  virtual std::vector<Job> history(int max_items) = 0;
  // Hides the given jobs (all finished jobs when `job_ids` is empty) from history(); the jobs stay.
  virtual void clear_history(const std::vector<std::string>& job_ids) = 0;

  // The database queue: takes the highest-priority, oldest claimable job (queued and due, or
  // running with an expired lease; not a model download), marks it running under `worker_id`
  // with attempts + 1.
  virtual std::optional<Job> claim_job(const std::string& worker_id, int64_t lease_ms) = 0;
  // claim_job for model downloads only.
  virtual std::optional<Job> claim_model_download(const std::string& worker_id, int64_t lease_ms) = 0;
  // claim_job for one job (a queue dispatched it): nullopt when that job is not claimable now.
  virtual std::optional<Job> claim_job_by_id(const std::string& job_id, const std::string& worker_id,
                                             int64_t lease_ms) = 0;
  // Up to `limit` dispatchable jobs (no model downloads) with ids after `after_id`, by id: what a
  // queue reconciles against, page by page.
  virtual std::vector<DispatchableJob> dispatchable_jobs(const std::string& after_id, int limit) = 0;
  virtual bool renew_lease(const Lease& lease, int64_t lease_ms) = 0;
  // Saves items and the aggregate progress.
  virtual bool save_items(const Lease& lease, const std::vector<JobItem>& items, double progress) = 0;
  // Ends the job (succeeded, failed with error, or canceled) and appends its terminal event in
  // the same transaction, so a stream never sees the end of a job that is not yet ended.
  virtual bool finish_job(const Lease& lease, JobStatus status, const nlohmann::json& error,
                          const Event& terminal_event) = 0;
  // Hands the job back to the queue, claimable again after `run_after_ms`: a retry after a
  // transient error, or (`attempt_counts` false) a worker shutting down, which grants the job one
  // more attempt so that restarts never use up its retries.
  virtual bool requeue_job(const Lease& lease, int64_t run_after_ms, const nlohmann::json& error,
                           bool attempt_counts) = 0;
  // A queued job is canceled at once; a running one is marked for its worker to stop.
  virtual CancelOutcome cancel_job(const std::string& id) = 0;

  // Appends an event; with a lease it is fenced like every worker write (returns 0 when refused).
  virtual int64_t append_event(const Event& event, const Lease* lease = nullptr) = 0;
  // Events of the job with id > after_id, oldest first.
  virtual std::vector<Event> events_after(const std::string& job_id, int64_t after_id, int limit) = 0;

  virtual int64_t start_step(const Lease& lease, const Step& step) = 0;
  // Records the end of a step. Not fenced: a step is the worker's own record of what happened.
  virtual void finish_step(const Step& step) = 0;
  virtual std::vector<Step> list_steps(const std::string& job_id) = 0;
  // The most recent successful first-attempt runs of generate jobs on `model_id`, newest first.
  virtual std::vector<RunTiming> recent_run_timings(const std::string& model_id, int limit) = 0;

  // Inserts or replaces the artifact with the same (job, key): a rerun overwrites its own result.
  virtual bool put_artifact(const Lease& lease, const Artifact& artifact) = 0;
  virtual std::vector<Artifact> list_artifacts(const std::string& job_id) = 0;
  // The newest artifact a workflow saved as `filename` in the output subfolder `subfolder` (its
  // metadata's "filename" and "subfolder"): ComfyUI's /view of an image made on another machine.
  virtual std::optional<Artifact> find_output_artifact(const std::string& subfolder,
                                                       const std::string& filename) = 0;

  // The model registry. Inserts the model or replaces the entry with the same id, keeping its
  // created_ms; sets updated_ms.
  virtual void upsert_model(const Model& model) = 0;
  virtual std::optional<Model> get_model(const std::string& id) = 0;
  // Every registered model, sorted by id.
  virtual std::vector<Model> list_models() = 0;
  // Removes the entry; false when there was none.
  virtual bool delete_model(const std::string& id) = 0;

  // API keys. Inserts a new key; throws Error(kConflict) when its id or hash exists already.
  virtual void create_api_key(const ApiKeyRecord& key) = 0;
  // Every key, revoked ones too, oldest first.
  virtual std::vector<ApiKeyRecord> list_api_keys() = 0;
  // The key with this hash, revoked or not; nullopt when none.
  virtual std::optional<ApiKeyRecord> find_api_key(const std::string& secret_hash) = 0;
  // Marks the key revoked (keeps its first revocation time); false when there is no such key.
  virtual bool revoke_api_key(const std::string& id) = 0;
  // The owner's jobs made at or after `since_ms`, and those queued or running.
  virtual OwnerJobCounts count_owner_jobs(const std::string& owner, int64_t since_ms) = 0;
  // Whether any key was ever created: once one was, the service requires keys, also after every
  // key was revoked.
  virtual bool has_api_keys() = 0;

  // Webhooks. Claims up to `limit` pending deliveries that are due and not being sent, oldest
  // due first, at most one per job that has none in flight: attempts + 1, leased for `lease_ms`.
  virtual std::vector<WebhookDelivery> claim_webhook_deliveries(int limit, int64_t lease_ms) = 0;
  // Records an attempt's outcome and ends the lease; false when a later claim holds it.
  virtual bool record_webhook_attempt(const WebhookAttempt& attempt) = 0;
  // The job's deliveries, oldest first.
  virtual std::vector<WebhookDelivery> list_webhook_deliveries(const std::string& job_id) = 0;
  virtual std::optional<Event> get_event(int64_t id) = 0;
  // The key with this id, revoked or not.
  virtual std::optional<ApiKeyRecord> get_api_key(const std::string& id) = 0;

  // The audit log: appends an entry (created_ms 0: now); lists the `limit` newest, newest first.
  virtual void append_audit(const AuditEntry& entry) = 0;
  virtual std::vector<AuditEntry> list_audit(int limit) = 0;

  // Throws Error(kUnavailable) when the database cannot answer.
  virtual void ping() = 0;
};

// Opens the store named by a database URL ("sqlite:///path/to/db.sqlite3" or
// "postgres://user@host:port/db"); throws
// Error(kInvalidArgument) naming DREAMFORGE_DATABASE_URL for an unknown scheme.
std::unique_ptr<Store> open_store(const std::string& database_url);

// Whether the URL names a PostgreSQL database ("postgres://" or "postgresql://"), which several
// machines may share.
bool is_postgres_url(const std::string& database_url);

}  // namespace df::store

// The Store on SQLite (WAL): the embedded default; one serialised connection per process.
#pragma once

#include <mutex>
#include <string>

#include "store/sqlite_db.h"
#include "store/store.h"

namespace df::store {

class SqliteStore : public Store {
 public:
  // Opens or creates the database file and applies pending migrations.
  explicit SqliteStore(const std::string& path);

  CreateJobResult create_job(const Job& job) override;
  std::optional<Job> get_job(const std::string& id) override;
  std::optional<Job> find_job_by_idempotency_key(const std::string& key) override;
  JobPage list_jobs(const JobFilter& filter) override;
  std::map<std::string, int64_t> count_jobs_by_status() override;
  int64_t count_jobs(JobStatus status) override;
  std::vector<Job> history(int max_items) override;
  void clear_history(const std::vector<std::string>& job_ids) override;
  std::optional<Job> claim_job(const std::string& worker_id, int64_t lease_ms) override;
  std::optional<Job> claim_model_download(const std::string& worker_id, int64_t lease_ms) override;
  std::optional<Job> claim_job_by_id(const std::string& job_id, const std::string& worker_id,
                                     int64_t lease_ms) override;
  std::vector<DispatchableJob> dispatchable_jobs(const std::string& after_id, int limit) override;
  bool renew_lease(const Lease& lease, int64_t lease_ms) override;
  bool save_items(const Lease& lease, const std::vector<JobItem>& items, double progress) override;
  bool finish_job(const Lease& lease, JobStatus status, const nlohmann::json& error,
                  const Event& terminal_event) override;
  bool requeue_job(const Lease& lease, int64_t run_after_ms, const nlohmann::json& error,
                   bool attempt_counts) override;
  CancelOutcome cancel_job(const std::string& id) override;
  int64_t append_event(const Event& event, const Lease* lease) override;
  std::vector<Event> events_after(const std::string& job_id, int64_t after_id, int limit) override;
  int64_t start_step(const Lease& lease, const Step& step) override;
  void finish_step(const Step& step) override;
  std::vector<Step> list_steps(const std::string& job_id) override;
  bool put_artifact(const Lease& lease, const Artifact& artifact) override;
  std::vector<Artifact> list_artifacts(const std::string& job_id) override;
  std::optional<Artifact> find_output_artifact(const std::string& subfolder,
                                               const std::string& filename) override;
  std::vector<RunTiming> recent_run_timings(const std::string& model_id, int limit) override;
  void upsert_model(const Model& model) override;
  std::optional<Model> get_model(const std::string& id) override;
  std::vector<Model> list_models() override;
  bool delete_model(const std::string& id) override;
  void create_api_key(const ApiKeyRecord& key) override;
  std::vector<ApiKeyRecord> list_api_keys() override;
  std::optional<ApiKeyRecord> find_api_key(const std::string& secret_hash) override;
  bool revoke_api_key(const std::string& id) override;
  std::optional<ApiKeyRecord> get_api_key(const std::string& id) override;
  std::vector<WebhookDelivery> claim_webhook_deliveries(int limit, int64_t lease_ms) override;
  bool record_webhook_attempt(const WebhookAttempt& attempt) override;
  std::vector<WebhookDelivery> list_webhook_deliveries(const std::string& job_id) override;
  std::optional<Event> get_event(int64_t id) override;
  bool has_api_keys() override;
  OwnerJobCounts count_owner_jobs(const std::string& owner, int64_t since_ms) override;
  void append_audit(const AuditEntry& entry) override;
  std::vector<AuditEntry> list_audit(int limit) override;
  void ping() override;

 private:
  void migrate();
  bool holds_lease(const Lease& lease);
  std::optional<Job> get_job_locked(const std::string& id);
  // Marks the job running under `worker_id` when it is claimable now; the caller holds the lock
  // and a transaction.
  // claim_job (`download_test` " <> ") or claim_model_download (" = ").
  std::optional<Job> claim_next(const char* download_test, const std::string& worker_id,
                                int64_t lease_ms);
  std::optional<Job> claim_locked(const std::string& job_id, const std::string& worker_id,
                                  int64_t lease_ms);
  // Appends the event, and its webhook delivery when the job's subscription wants one.
  int64_t insert_event(const Event& event);
  // The webhook outbox (sqlite_webhooks.cpp): the delivery for the event just stored, if any.
  void enqueue_webhook(const Event& event, int64_t event_id);

  std::mutex mutex_;
  SqliteDb db_;
};

}  // namespace df::store

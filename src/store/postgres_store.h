// The Store on PostgreSQL: the shared database of a scaled-out deployment (several API and worker
// processes); the queue claims with FOR UPDATE SKIP LOCKED.
#pragma once

#include <string>

#include "store/postgres_db.h"
#include "store/store.h"

namespace df::store {

class PostgresStore : public Store {
 public:
  // Connects with the libpq URL ("postgres://user@host:port/db?...") and applies pending
  // migrations; throws Error(kUnavailable) when the server cannot be reached. Threads share a
  // pool of up to `max_connections` connections.
  explicit PostgresStore(const std::string& url, size_t max_connections = 16);

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
  // claim_job (`download_test` " <> ") or claim_model_download (" = ").
  std::optional<Job> claim_next(const char* download_test, const std::string& worker_id,
                                int64_t lease_ms);

  PgPool pool_;
};

// The webhook outbox (postgres_webhooks.cpp): writes the delivery for the event `event_id` just
// stored, if the job's subscription wants one, in the caller's transaction.
void enqueue_postgres_webhook(PgConnection& db, const Event& event, int64_t event_id);

}  // namespace df::store

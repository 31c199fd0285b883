// The webhook outbox on PostgreSQL: deliveries written with their events, claimed with leases
// (SKIP LOCKED, so several API processes share the sending).
#include <algorithm>

#include "core/ids.h"
#include "store/postgres_store.h"
#include "store/store_events.h"

namespace df::store {
namespace {

constexpr const char* kDeliveryColumns =
    "id, job_id, event, event_id, url, status, attempts, next_attempt_ms, lease_until_ms, "
    "first_attempt_ms, delivered_ms, last_status_code, last_error, payload, created_ms, updated_ms";

WebhookDelivery read_delivery(const PgResult& rows, int row) {
  WebhookDelivery delivery;
  delivery.id = rows.text(row, 0);
  delivery.job_id = rows.text(row, 1);
  delivery.event = rows.text(row, 2);
  delivery.event_id = rows.integer(row, 3);
  delivery.url = rows.text(row, 4);
  delivery.status = rows.text(row, 5);
  delivery.attempts = static_cast<int>(rows.integer(row, 6));
  delivery.next_attempt_ms = rows.integer(row, 7);
  delivery.lease_until_ms = rows.integer(row, 8);
  delivery.first_attempt_ms = rows.integer(row, 9);
  delivery.delivered_ms = rows.integer(row, 10);
  delivery.last_status_code = static_cast<int>(rows.integer(row, 11));
  delivery.last_error = rows.text(row, 12);
  delivery.payload = rows.text(row, 13);
  delivery.created_ms = rows.integer(row, 14);
  delivery.updated_ms = rows.integer(row, 15);
  return delivery;
}

std::vector<WebhookDelivery> read_deliveries(const PgResult& rows) {
  std::vector<WebhookDelivery> deliveries;
  for (int row = 0; row < rows.rows(); ++row) deliveries.push_back(read_delivery(rows, row));
  return deliveries;
}

}  // namespace

void enqueue_postgres_webhook(PgConnection& db, const Event& event, int64_t event_id) {
  if (!webhook_event_name(event)) return;
  const auto subscription =
      db.query("SELECT webhook_url, webhook_events FROM jobs WHERE id = $1", event.job_id);
  if (subscription.rows() == 0) return;
  const std::string url = subscription.text(0, 0);
  const auto step =
      webhook_outbox_step({url, split_webhook_events(subscription.text(0, 1)), ""}, event);
  if (!step) return;
  const int64_t now = now_ms();
  if (step->coalesce) {
    const auto folded = db.query(
        "UPDATE webhook_deliveries SET event_id = $1, updated_ms = $2 WHERE job_id = $3 AND "
        "event = 'progress' AND status = 'pending' AND attempts = 0 AND lease_until_ms <= $2",
        event_id, now, event.job_id);
    if (folded.affected() > 0) return;
  }
  if (step->supersede_progress) {
    db.query(
        "UPDATE webhook_deliveries SET status = 'superseded', updated_ms = $1 WHERE job_id = $2 "
        "AND event = 'progress' AND status = 'pending' AND lease_until_ms <= $1",
        now, event.job_id);
  }
  int64_t due = now;
  if (step->throttle) {
    const auto last = db.query(
        "SELECT COALESCE(MAX(CASE WHEN first_attempt_ms > 0 THEN first_attempt_ms ELSE "
        "next_attempt_ms END), 0) FROM webhook_deliveries WHERE job_id = $1 AND "
        "event = 'progress'",
        event.job_id);
    if (last.integer(0, 0) > 0) due = std::max(due, last.integer(0, 0) + kProgressWebhookIntervalMs);
  }
  db.query(
      "INSERT INTO webhook_deliveries (id, job_id, event, event_id, url, next_attempt_ms, "
      "created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
      new_webhook_delivery_id(), event.job_id, step->event, event_id, url, due, now);
}

std::vector<WebhookDelivery> PostgresStore::claim_webhook_deliveries(int limit, int64_t lease_ms) {
  auto db = pool_.borrow();
  const int64_t now = now_ms();
  // DISTINCT ON cannot be locked: the oldest due delivery of each job is picked first, then
  // locked; a job's delivery another process is sending is skipped.
  return read_deliveries(db->query(
      std::string("WITH first AS (SELECT DISTINCT ON (job_id) id, next_attempt_ms FROM "
                  "webhook_deliveries d WHERE status = 'pending' AND next_attempt_ms <= $1 AND "
                  "lease_until_ms <= $1 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries o "
                  "WHERE o.job_id = d.job_id AND o.status = 'pending' AND o.lease_until_ms > $1) "
                  "ORDER BY job_id, next_attempt_ms, id), due AS (SELECT w.id FROM "
                  "webhook_deliveries w JOIN first ON first.id = w.id WHERE w.status = 'pending' "
                  "AND w.lease_until_ms <= $1 ORDER BY first.next_attempt_ms, w.id LIMIT $2 "
                  "FOR UPDATE OF w SKIP LOCKED) UPDATE webhook_deliveries w SET attempts = "
                  "w.attempts + 1, lease_until_ms = $3, first_attempt_ms = CASE WHEN "
                  "w.first_attempt_ms = 0 THEN $1 ELSE w.first_attempt_ms END, updated_ms = $1 "
                  "FROM due WHERE w.id = due.id RETURNING ") +
          "w.id, w.job_id, w.event, w.event_id, w.url, w.status, w.attempts, w.next_attempt_ms, "
          "w.lease_until_ms, w.first_attempt_ms, w.delivered_ms, w.last_status_code, "
          "w.last_error, w.payload, w.created_ms, w.updated_ms",
      now, limit, now + lease_ms));
}

bool PostgresStore::record_webhook_attempt(const WebhookAttempt& attempt) {
  auto db = pool_.borrow();
  return db->query(
               "UPDATE webhook_deliveries SET status = $1, next_attempt_ms = $2, "
               "lease_until_ms = 0, last_status_code = $3, last_error = $4, payload = CASE WHEN "
               "payload = '' THEN $5 ELSE payload END, delivered_ms = CASE WHEN $1 = 'delivered' "
               "THEN $6 ELSE delivered_ms END, updated_ms = $6 WHERE id = $7 AND attempts = $8 "
               "AND status = 'pending'",
               attempt.status, attempt.next_attempt_ms, attempt.status_code, attempt.error,
               attempt.payload, now_ms(), attempt.delivery_id, attempt.attempt)
             .affected() == 1;
}

std::vector<WebhookDelivery> PostgresStore::list_webhook_deliveries(const std::string& job_id) {
  auto db = pool_.borrow();
  return read_deliveries(db->query(std::string("SELECT ") + kDeliveryColumns +
                                       " FROM webhook_deliveries WHERE job_id = $1 "
                                       "ORDER BY created_ms, id",
                                   job_id));
}

}  // namespace df::store

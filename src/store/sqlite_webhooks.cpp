// The webhook outbox on SQLite: deliveries written with their events, claimed with leases.
#include <algorithm>
#include <set>

#include "core/ids.h"
#include "store/sqlite_store.h"
#include "store/store_events.h"

namespace df::store {
namespace {

constexpr const char* kDeliveryColumns =
    "id, job_id, event, event_id, url, status, attempts, next_attempt_ms, lease_until_ms, "
    "first_attempt_ms, delivered_ms, last_status_code, last_error, payload, created_ms, updated_ms";

WebhookDelivery read_delivery(const SqliteStatement& row) {
  WebhookDelivery delivery;
  delivery.id = row.column_text(0);
  delivery.job_id = row.column_text(1);
  delivery.event = row.column_text(2);
  delivery.event_id = row.column_int(3);
  delivery.url = row.column_text(4);
  delivery.status = row.column_text(5);
  delivery.attempts = static_cast<int>(row.column_int(6));
  delivery.next_attempt_ms = row.column_int(7);
  delivery.lease_until_ms = row.column_int(8);
  delivery.first_attempt_ms = row.column_int(9);
  delivery.delivered_ms = row.column_int(10);
  delivery.last_status_code = static_cast<int>(row.column_int(11));
  delivery.last_error = row.column_text(12);
  delivery.payload = row.column_text(13);
  delivery.created_ms = row.column_int(14);
  delivery.updated_ms = row.column_int(15);
  return delivery;
}

}  // namespace

void SqliteStore::enqueue_webhook(const Event& event, int64_t event_id) {
  if (!webhook_event_name(event)) return;
  auto subscription = db_.prepare("SELECT webhook_url, webhook_events FROM jobs WHERE id = ?");
  subscription.bind(1, event.job_id);
  if (!subscription.step()) return;
  const std::string url = subscription.column_text(0);
  const auto step = webhook_outbox_step(
      {url, split_webhook_events(subscription.column_text(1)), ""}, event);
  if (!step) return;
  const int64_t now = now_ms();
  if (step->coalesce) {
    auto fold = db_.prepare(
        "UPDATE webhook_deliveries SET event_id = ?, updated_ms = ? WHERE job_id = ? AND "
        "event = 'progress' AND status = 'pending' AND attempts = 0 AND lease_until_ms <= ?");
    fold.bind(1, event_id).bind(2, now).bind(3, event.job_id).bind(4, now);
    fold.run();
    if (fold.changes() > 0) return;
  }
  if (step->supersede_progress) {
    auto stale = db_.prepare(
        "UPDATE webhook_deliveries SET status = 'superseded', updated_ms = ? WHERE job_id = ? "
        "AND event = 'progress' AND status = 'pending' AND lease_until_ms <= ?");
    stale.bind(1, now).bind(2, event.job_id).bind(3, now);
    stale.run();
  }
  int64_t due = now;
  if (step->throttle) {
    auto last = db_.prepare(
        "SELECT COALESCE(MAX(CASE WHEN first_attempt_ms > 0 THEN first_attempt_ms ELSE "
        "next_attempt_ms END), 0) FROM webhook_deliveries WHERE job_id = ? AND event = 'progress'");
    last.bind(1, event.job_id);
    if (last.step() && last.column_int(0) > 0) {
      due = std::max(due, last.column_int(0) + kProgressWebhookIntervalMs);
    }
  }
  auto insert = db_.prepare(
      "INSERT INTO webhook_deliveries (id, job_id, event, event_id, url, next_attempt_ms, "
      "created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  insert.bind(1, new_webhook_delivery_id()).bind(2, event.job_id).bind(3, step->event);
  insert.bind(4, event_id).bind(5, url).bind(6, due).bind(7, now).bind(8, now);
  insert.run();
}

std::vector<WebhookDelivery> SqliteStore::claim_webhook_deliveries(int limit, int64_t lease_ms) {
  std::lock_guard lock(mutex_);
  const int64_t now = now_ms();
  std::vector<WebhookDelivery> due;
  {
    // Read first, without the write lock: idle senders poll often.
    auto query = db_.prepare(
        std::string("SELECT ") + kDeliveryColumns +
        " FROM webhook_deliveries d WHERE status = 'pending' AND next_attempt_ms <= ? AND "
        "lease_until_ms <= ? AND NOT EXISTS (SELECT 1 FROM webhook_deliveries o WHERE "
        "o.job_id = d.job_id AND o.status = 'pending' AND o.lease_until_ms > ?) "
        "ORDER BY next_attempt_ms, id LIMIT ?");
    query.bind(1, now).bind(2, now).bind(3, now).bind(4, limit * 4);
    std::set<std::string> jobs;
    while (static_cast<int>(due.size()) < limit && query.step()) {
      WebhookDelivery delivery = read_delivery(query);
      if (jobs.insert(delivery.job_id).second) due.push_back(std::move(delivery));  // one per job
    }
  }
  if (due.empty()) return due;
  SqliteTransaction transaction(db_);
  std::vector<WebhookDelivery> claimed;
  for (auto& delivery : due) {
    // Another process on this file may have claimed it since it was read.
    auto lease = db_.prepare(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, lease_until_ms = ?, "
        "first_attempt_ms = CASE WHEN first_attempt_ms = 0 THEN ? ELSE first_attempt_ms END, "
        "updated_ms = ? WHERE id = ? AND status = 'pending' AND lease_until_ms <= ? AND "
        "attempts = ?");
    lease.bind(1, now + lease_ms).bind(2, now).bind(3, now).bind(4, delivery.id).bind(5, now);
    lease.bind(6, delivery.attempts);
    lease.run();
    if (lease.changes() != 1) continue;
    delivery.attempts += 1;
    delivery.lease_until_ms = now + lease_ms;
    if (delivery.first_attempt_ms == 0) delivery.first_attempt_ms = now;
    claimed.push_back(std::move(delivery));
  }
  transaction.commit();
  return claimed;
}

bool SqliteStore::record_webhook_attempt(const WebhookAttempt& attempt) {
  std::lock_guard lock(mutex_);
  const int64_t now = now_ms();
  auto update = db_.prepare(
      "UPDATE webhook_deliveries SET status = ?, next_attempt_ms = ?, lease_until_ms = 0, "
      "last_status_code = ?, last_error = ?, payload = CASE WHEN payload = '' THEN ? ELSE "
      "payload END, delivered_ms = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_ms END, "
      "updated_ms = ? WHERE id = ? AND attempts = ? AND status = 'pending'");
  update.bind(1, attempt.status).bind(2, attempt.next_attempt_ms).bind(3, attempt.status_code);
  update.bind(4, attempt.error).bind(5, attempt.payload).bind(6, attempt.status).bind(7, now);
  update.bind(8, now).bind(9, attempt.delivery_id).bind(10, attempt.attempt);
  update.run();
  return update.changes() == 1;
}

std::vector<WebhookDelivery> SqliteStore::list_webhook_deliveries(const std::string& job_id) {
  std::lock_guard lock(mutex_);
  auto query = db_.prepare(std::string("SELECT ") + kDeliveryColumns +
                           " FROM webhook_deliveries WHERE job_id = ? ORDER BY created_ms, id");
  query.bind(1, job_id);
  std::vector<WebhookDelivery> deliveries;
  while (query.step()) deliveries.push_back(read_delivery(query));
  return deliveries;
}

}  // namespace df::store

-- Webhooks: each job's subscription, each API key's signing secret, and the deliveries (an outbox
-- written in the same transaction as the event they tell of, so none is lost to a crash).
ALTER TABLE jobs ADD COLUMN webhook_url TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN webhook_events TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN webhook_key_id TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN webhook_secret TEXT NOT NULL DEFAULT '';
CREATE TABLE webhook_deliveries (
  id TEXT PRIMARY KEY,
  job_id TEXT NOT NULL REFERENCES jobs(id),
  event TEXT NOT NULL,
  event_id INTEGER NOT NULL,
  url TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending',
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms INTEGER NOT NULL,
  lease_until_ms INTEGER NOT NULL DEFAULT 0,
  first_attempt_ms INTEGER NOT NULL DEFAULT 0,
  delivered_ms INTEGER NOT NULL DEFAULT 0,
  last_status_code INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  payload TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_by_job ON webhook_deliveries (job_id, created_ms);
CREATE INDEX pending_webhook_deliveries ON webhook_deliveries (next_attempt_ms) WHERE status = 'pending';

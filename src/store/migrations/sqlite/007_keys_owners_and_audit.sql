-- API keys (only their SHA-256 is kept, with their limits; 0: none), the user who owns each job,
-- and the audit log of admin actions (key changes, model downloads, removals, enabling).
ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT 'default';
CREATE INDEX jobs_by_owner ON jobs (owner, created_ms DESC, id DESC);
CREATE INDEX unfinished_jobs_by_owner ON jobs (owner) WHERE status IN ('queued', 'running');
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  user_name TEXT NOT NULL,
  scope TEXT NOT NULL,
  secret_hash TEXT NOT NULL UNIQUE,
  created_ms INTEGER NOT NULL,
  revoked_ms INTEGER NOT NULL DEFAULT 0,
  jobs_per_minute INTEGER NOT NULL DEFAULT 0,
  max_concurrent_jobs INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created_ms INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  details TEXT NOT NULL DEFAULT '{}'
);

-- Jobs, steps, events, artifacts and models, with the indices the queue, the listings, ComfyUI's
-- history, run-time estimates and event tails read. Ids are compared bytewise (COLLATE "C"), like
-- SQLite does, so time-ordered ids sort the same in both stores whatever the database's locale.
CREATE TABLE jobs (
  id TEXT COLLATE "C" PRIMARY KEY,
  type TEXT NOT NULL,
  status TEXT NOT NULL,
  spec TEXT NOT NULL,
  model_id TEXT,
  idempotency_key TEXT UNIQUE,
  request_hash TEXT NOT NULL,
  priority INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  progress DOUBLE PRECISION NOT NULL DEFAULT 0,
  items TEXT NOT NULL DEFAULT '[]',
  error TEXT,
  worker_id TEXT,
  lease_expires_ms BIGINT NOT NULL DEFAULT 0,
  run_after_ms BIGINT NOT NULL DEFAULT 0,
  cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
  hidden_from_history BOOLEAN NOT NULL DEFAULT FALSE,
  created_ms BIGINT NOT NULL,
  updated_ms BIGINT NOT NULL,
  started_ms BIGINT NOT NULL DEFAULT 0,
  finished_ms BIGINT NOT NULL DEFAULT 0,
  schema_version INTEGER NOT NULL DEFAULT 1
);
-- The queue reads only unfinished jobs, in claim order, however long the history grows.
CREATE INDEX jobs_claimable ON jobs (priority DESC, created_ms, id)
  WHERE status IN ('queued', 'running');
CREATE INDEX jobs_by_status_and_created ON jobs (status, created_ms, id);
CREATE INDEX jobs_by_created ON jobs (created_ms, id);
CREATE INDEX jobs_by_updated ON jobs (updated_ms);
CREATE INDEX jobs_by_finished ON jobs (finished_ms);
CREATE INDEX jobs_by_model ON jobs (model_id);

CREATE TABLE steps (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id TEXT COLLATE "C" NOT NULL REFERENCES jobs (id),
  attempt INTEGER NOT NULL,
  worker_id TEXT NOT NULL,
  runner TEXT NOT NULL,
  device TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL,
  started_ms BIGINT NOT NULL,
  finished_ms BIGINT NOT NULL DEFAULT 0,
  memory_before_bytes BIGINT NOT NULL DEFAULT 0,
  memory_after_bytes BIGINT NOT NULL DEFAULT 0,
  memory_peak_bytes BIGINT NOT NULL DEFAULT 0,
  memory_kind TEXT NOT NULL DEFAULT '',
  error TEXT
);
CREATE INDEX steps_by_job ON steps (job_id);
CREATE INDEX steps_by_status_and_finish ON steps (status, finished_ms);

CREATE TABLE events (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id TEXT COLLATE "C" NOT NULL REFERENCES jobs (id),
  type TEXT NOT NULL,
  code TEXT NOT NULL DEFAULT '',
  item_index INTEGER,
  message TEXT NOT NULL DEFAULT '',
  plain TEXT NOT NULL DEFAULT '',
  data TEXT NOT NULL DEFAULT '{}',
  created_ms BIGINT NOT NULL
);
CREATE INDEX events_by_job ON events (job_id, id);

CREATE TABLE artifacts (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id TEXT COLLATE "C" NOT NULL REFERENCES jobs (id),
  attempt INTEGER NOT NULL,
  item_index INTEGER NOT NULL,
  key TEXT NOT NULL,
  content_type TEXT NOT NULL,
  size BIGINT NOT NULL,
  sha256 TEXT NOT NULL,
  seed TEXT NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  metadata TEXT NOT NULL DEFAULT '{}',
  created_ms BIGINT NOT NULL,
  UNIQUE (job_id, key)
);
CREATE INDEX artifacts_by_job ON artifacts (job_id, item_index);

CREATE TABLE models (
  id TEXT COLLATE "C" PRIMARY KEY,
  kind TEXT NOT NULL,
  family TEXT NOT NULL,
  installed BOOLEAN NOT NULL,
  enabled BOOLEAN NOT NULL,
  record TEXT NOT NULL,
  created_ms BIGINT NOT NULL,
  updated_ms BIGINT NOT NULL
);

-- ComfyUI history can be cleared without losing the jobs (they are only hidden there), and jobs are
-- ordered by creation time (clients may choose job ids, e.g. ComfyUI prompt ids).
ALTER TABLE jobs ADD COLUMN hidden_from_history INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_by_finished ON jobs (finished_ms);
CREATE INDEX jobs_by_claim_order ON jobs (status, priority DESC, created_ms, id);
CREATE INDEX jobs_by_created ON jobs (created_ms, id);

-- The model registry: one row per model, the full record as JSON beside the columns it is looked up by.
CREATE TABLE models (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  family TEXT NOT NULL,
  installed INTEGER NOT NULL,
  enabled INTEGER NOT NULL,
  record TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);

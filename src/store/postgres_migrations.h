// The PostgreSQL schema's versioned migrations: which are applied, and applying the pending ones.
#pragma once

#include <cstdint>

#include "store/postgres_db.h"

namespace df::store {

struct SchemaVersions {
  int64_t before = 0;  // the database's version when migrating began
  int64_t after = 0;   // its version now (the newest this build knows)
};

// The newest schema version this build knows (the number of its migrations).
int64_t latest_postgres_schema_version();

// Applies the pending migrations in one transaction, recording each in schema_migrations. An
// advisory lock makes processes that start together take turns: the first migrates, the others
// then find nothing left to do. Throws Error(kUnavailable) for a database whose schema is newer
// than this build.
SchemaVersions migrate_postgres(PgConnection& connection);

}  // namespace df::store

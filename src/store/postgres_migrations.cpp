// The PostgreSQL schema's versioned migrations.
#include "store/postgres_migrations.h"

#include <iterator>
#include <string>

#include "core/error.h"
#include "core/ids.h"

namespace df::store {
namespace {

struct Migration {
  const char* name;
  const char* sql;
};

constexpr Migration kMigrations[] = {
#include "postgres_migrations.inc"
};

// pg_advisory_xact_lock key of schema migrations ("dfmigrat" in ASCII).
constexpr int64_t kMigrationLock = 0x64666d6967726174;

}  // namespace

int64_t latest_postgres_schema_version() { return static_cast<int64_t>(std::size(kMigrations)); }

SchemaVersions migrate_postgres(PgConnection& connection) {
  PgTransaction transaction(connection);
  connection.query("SELECT pg_advisory_xact_lock($1::bigint)", kMigrationLock);
  connection.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT "
      "NULL, applied_ms BIGINT NOT NULL)");
  const auto applied = connection.exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  SchemaVersions versions{applied.integer(0, 0), latest_postgres_schema_version()};
  if (versions.before > versions.after) {
    throw Error(ErrorCode::kUnavailable,
                "database schema version " + std::to_string(versions.before) +
                    " is newer than this build understands (" + std::to_string(versions.after) +
                    "); run a newer dreamforge",
                {{"schema_version", versions.before}, {"known_version", versions.after}});
  }
  for (auto version = versions.before; version < versions.after; ++version) {
    const Migration& migration = kMigrations[version];
    connection.exec(migration.sql);
    connection.query(
        "INSERT INTO schema_migrations (version, name, applied_ms) VALUES ($1, $2, $3)",
        version + 1, migration.name, now_ms());
  }
  transaction.commit();
  return versions;
}

}  // namespace df::store

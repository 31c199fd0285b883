// `dreamforge migrate`: applies the pending schema migrations of the service's database (SQLite or
// PostgreSQL) and reports the version before and after. The service also migrates when it starts;
// this command lets a deployment migrate once before starting many processes.
#include "cli/cmd_migrate.h"

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>

#include "cli/service_options.h"
#include "store/postgres_db.h"
#include "store/postgres_migrations.h"
#include "store/sqlite_db.h"
#include "store/store.h"

namespace df::cli {
namespace {

bool starts_with(const std::string& text, std::string_view prefix) {
  return text.rfind(prefix, 0) == 0;
}

int64_t sqlite_schema_version(const std::string& path) {
  if (!std::filesystem::exists(path)) return 0;
  store::SqliteDb db(path);
  auto version = db.prepare("PRAGMA user_version");
  version.step();
  return version.column_int(0);
}

store::SchemaVersions migrate(const std::string& database_url) {
  if (store::is_postgres_url(database_url)) {
    store::PgConnection connection(database_url);
    return store::migrate_postgres(connection);
  }
  constexpr std::string_view kSqlite = "sqlite://";
  const std::string path =
      starts_with(database_url, kSqlite) ? database_url.substr(kSqlite.size()) : "";
  store::SchemaVersions versions;
  versions.before = path.empty() ? 0 : sqlite_schema_version(path);
  store::open_store(database_url);  // migrates; refuses unknown URLs naming the variable
  versions.after = sqlite_schema_version(path);
  return versions;
}

void report(const store::SchemaVersions& versions) {
  const auto applied = versions.after - versions.before;
  std::cout << "database schema at version " << versions.after;
  if (applied == 0) {
    std::cout << " (up to date)\n";
  } else {
    std::cout << " (applied " << applied << (applied == 1 ? " migration" : " migrations")
              << " from version " << versions.before << ")\n";
  }
}

}  // namespace

void register_migrate_command(CLI::App& app) {
  auto options = std::make_shared<ServiceOptions>();
  CLI::App* command =
      app.add_subcommand("migrate", "Bring the database schema up to date and show its version");
  add_database_options(*command, *options);
  command->callback([options] {
    options->resolve_paths();
    report(migrate(options->database_url));
  });
}

}  // namespace df::cli

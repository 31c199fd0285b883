// A thin RAII layer over the SQLite C API: one connection, prepared statements, transactions.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

struct sqlite3;
struct sqlite3_stmt;

namespace df::store {

// A prepared statement. One made by SqliteDb::prepare is borrowed from the connection's cache:
// destroying it resets it for the next use instead of finalizing it.
class SqliteStatement {
 public:
  SqliteStatement(sqlite3* db, std::string_view sql);
  SqliteStatement(sqlite3* db, sqlite3_stmt* cached, bool* in_use);
  ~SqliteStatement();
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  // Binds parameter `index` (1-based); empty optionals and nullptr bind NULL.
  SqliteStatement& bind(int index, int64_t value);
  SqliteStatement& bind(int index, int value) { return bind(index, static_cast<int64_t>(value)); }
  SqliteStatement& bind(int index, double value);
  SqliteStatement& bind(int index, std::string_view value);
  SqliteStatement& bind(int index, const char* value) { return bind(index, std::string_view(value)); }
  SqliteStatement& bind(int index, const std::string& value) { return bind(index, std::string_view(value)); }
  SqliteStatement& bind(int index, std::nullptr_t);
  SqliteStatement& bind(int index, const std::optional<int>& value);

  // Advances to the next row; false when done. Throws Error(kUnavailable) on failure.
  bool step();
  // Runs a statement that returns no rows.
  void run();

  int64_t column_int(int column) const;
  double column_double(int column) const;
  std::string column_text(int column) const;  // "" for NULL
  bool column_is_null(int column) const;
  int changes() const;

 private:
  sqlite3* db_;
  sqlite3_stmt* statement_ = nullptr;
  bool* in_use_ = nullptr;  // the cache slot's flag when borrowed
};

// How long a statement waits for another connection's lock before SQLITE_BUSY.
inline constexpr int kBusyTimeoutMs = 10000;

class SqliteDb {
 public:
  // Opens (creating) the file in WAL mode with a busy timeout; throws Error(kUnavailable).
  explicit SqliteDb(const std::string& path);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Runs statements; throws Error(kUnavailable) with details.sqlite_code.
  void exec(std::string_view sql);
  // A statement for `sql`, prepared once per connection and reused (a fresh one while the cached
  // one is still in use). Not thread-safe: the caller serialises use of the connection.
  SqliteStatement prepare(std::string_view sql);
  int64_t last_insert_id() const;
  sqlite3* handle() { return db_; }

 private:
  struct CachedStatement {
    sqlite3_stmt* statement = nullptr;
    bool in_use = false;
  };
  sqlite3* db_ = nullptr;
  std::map<std::string, CachedStatement, std::less<>> statements_;
};

// Whether a store error is SQLite's SQLITE_BUSY or SQLITE_LOCKED (details.sqlite_code).
bool is_busy(const Error& error);
// Runs `action` again while it fails busy, up to kBusyTimeoutMs.
void retry_while_busy(const std::function<void()>& action);

// BEGIN IMMEDIATE ... COMMIT, rolled back when destroyed uncommitted.
class SqliteTransaction {
 public:
  explicit SqliteTransaction(SqliteDb& db);
  ~SqliteTransaction();
  void commit();

 private:
  SqliteDb& db_;
  bool done_ = false;
};

}  // namespace df::store

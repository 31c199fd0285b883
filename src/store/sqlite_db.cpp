// A thin RAII layer over the SQLite C API.
#include "store/sqlite_db.h"

#include <sqlite3.h>

#include <chrono>
#include <thread>

#include "core/error.h"

namespace df::store {
namespace {

[[noreturn]] void fail(sqlite3* db, const std::string& what) {
  throw Error(ErrorCode::kUnavailable, "database: " + what + ": " + sqlite3_errmsg(db),
              {{"sqlite_code", sqlite3_extended_errcode(db)}});
}

}  // namespace

SqliteStatement::SqliteStatement(sqlite3* db, std::string_view sql) : db_(db) {
  if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &statement_, nullptr) !=
      SQLITE_OK) {
    fail(db, "cannot prepare '" + std::string(sql.substr(0, 60)) + "'");
  }
}

SqliteStatement::SqliteStatement(sqlite3* db, sqlite3_stmt* cached, bool* in_use)
    : db_(db), statement_(cached), in_use_(in_use) {
  *in_use_ = true;
}

SqliteStatement::~SqliteStatement() {
  if (in_use_ == nullptr) {
    sqlite3_finalize(statement_);
    return;
  }
  sqlite3_reset(statement_);  // ends its read transaction: a kept statement must not pin a snapshot
  sqlite3_clear_bindings(statement_);
  *in_use_ = false;
}

SqliteStatement& SqliteStatement::bind(int index, int64_t value) {
  sqlite3_bind_int64(statement_, index, value);
  return *this;
}

SqliteStatement& SqliteStatement::bind(int index, double value) {
  sqlite3_bind_double(statement_, index, value);
  return *this;
}

SqliteStatement& SqliteStatement::bind(int index, std::string_view value) {
  sqlite3_bind_text(statement_, index, value.data(), static_cast<int>(value.size()),
                    SQLITE_TRANSIENT);
  return *this;
}

SqliteStatement& SqliteStatement::bind(int index, std::nullptr_t) {
  sqlite3_bind_null(statement_, index);
  return *this;
}

SqliteStatement& SqliteStatement::bind(int index, const std::optional<int>& value) {
  return value ? bind(index, *value) : bind(index, nullptr);
}

bool SqliteStatement::step() {
  int rc = sqlite3_step(statement_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(db_, "statement failed");
}

void SqliteStatement::run() {
  while (step()) {
  }
}

int64_t SqliteStatement::column_int(int column) const {
  return sqlite3_column_int64(statement_, column);
}

double SqliteStatement::column_double(int column) const {
  return sqlite3_column_double(statement_, column);
}

std::string SqliteStatement::column_text(int column) const {
  const auto* text = sqlite3_column_text(statement_, column);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(statement_, column)));
}

bool SqliteStatement::column_is_null(int column) const {
  return sqlite3_column_type(statement_, column) == SQLITE_NULL;
}

int SqliteStatement::changes() const { return sqlite3_changes(db_); }

SqliteDb::SqliteDb(const std::string& path) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw Error(ErrorCode::kUnavailable, "database: cannot open " + path + ": " + message);
  }
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);
  retry_while_busy([this] { exec("PRAGMA journal_mode=WAL"); });
  exec("PRAGMA synchronous=NORMAL");
  exec("PRAGMA foreign_keys=ON");
}

SqliteDb::~SqliteDb() {
  for (auto& [sql, cached] : statements_) sqlite3_finalize(cached.statement);
  sqlite3_close(db_);
}

SqliteStatement SqliteDb::prepare(std::string_view sql) {
  auto found = statements_.find(sql);
  if (found == statements_.end()) {
    sqlite3_stmt* statement = nullptr;
    if (sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                           &statement, nullptr) != SQLITE_OK) {
      fail(db_, "cannot prepare '" + std::string(sql.substr(0, 60)) + "'");
    }
    found = statements_.emplace(std::string(sql), CachedStatement{statement, false}).first;
  }
  if (found->second.in_use) return SqliteStatement(db_, sql);
  return SqliteStatement(db_, found->second.statement, &found->second.in_use);
}

void SqliteDb::exec(std::string_view sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message ? message : "unknown error";
    sqlite3_free(message);
    throw Error(ErrorCode::kUnavailable, "database: " + text,
                {{"sqlite_code", sqlite3_extended_errcode(db_)}});
  }
}

bool is_busy(const Error& error) {
  const int code = error.details().value("sqlite_code", 0) & 0xff;
  return code == SQLITE_BUSY || code == SQLITE_LOCKED;
}

void retry_while_busy(const std::function<void()>& action) {
  // SQLite skips the busy handler where waiting could deadlock (a journal mode change, a lock
  // upgrade while others open the same new file): such SQLITE_BUSY is retried here, as long as
  // the busy timeout.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
  for (;;) {
    try {
      action();
      return;
    } catch (const Error& e) {
      if (!is_busy(e) || std::chrono::steady_clock::now() > deadline) throw;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int64_t SqliteDb::last_insert_id() const { return sqlite3_last_insert_rowid(db_); }

SqliteTransaction::SqliteTransaction(SqliteDb& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }

SqliteTransaction::~SqliteTransaction() {
  if (!done_) {
    try {
      db_.exec("ROLLBACK");
    } catch (const Error&) {
      // The connection already rolled back (e.g. after SQLITE_FULL); nothing is left to undo.
    }
  }
}

void SqliteTransaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace df::store

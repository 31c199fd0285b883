// A thin layer over libpq: connections, parameterized statements with text parameters, results,
// transactions and a small pool of connections shared by threads.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct pg_conn;
struct pg_result;

namespace df::store {

// A statement parameter in PostgreSQL's text form; nullopt is NULL.
using PgParam = std::optional<std::string>;

PgParam pg_param(std::string_view value);
inline PgParam pg_param(const std::string& value) { return pg_param(std::string_view(value)); }
inline PgParam pg_param(const char* value) { return pg_param(std::string_view(value)); }
PgParam pg_param(int64_t value);
inline PgParam pg_param(int value) { return pg_param(static_cast<int64_t>(value)); }
PgParam pg_param(double value);  // shortest text that reads back as the same double
PgParam pg_param(bool value);
PgParam pg_param(std::nullptr_t);
PgParam pg_param(const std::optional<int>& value);
inline PgParam pg_param(const PgParam& value) { return value; }

// The rows a statement returned.
class PgResult {
 public:
  explicit PgResult(pg_result* result);
  ~PgResult();
  PgResult(PgResult&& other) noexcept;
  PgResult& operator=(PgResult&&) = delete;
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;

  int rows() const;
  int64_t affected() const;  // rows an INSERT, UPDATE or DELETE changed
  std::string text(int row, int column) const;  // "" for NULL
  bool is_null(int row, int column) const;
  int64_t integer(int row, int column) const;
  double real(int row, int column) const;
  bool boolean(int row, int column) const;

 private:
  pg_result* result_;
};

// One connection to the server named by a libpq URL or conninfo string. Not thread-safe.
class PgConnection {
 public:
  // Connects; throws Error(kUnavailable) saying why not.
  explicit PgConnection(const std::string& url);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs `sql` with $1.. bound to `params`. Throws Error: kUnavailable when the server cannot
  // answer (connection lost, shutting down, serialization failure), kConflict for a broken
  // integrity constraint, kInternal for any other failure (SQL the server refuses).
  PgResult exec(std::string_view sql, const std::vector<PgParam>& params = {});
  template <class... Args>
  PgResult query(std::string_view sql, const Args&... args) {
    return exec(sql, std::vector<PgParam>{pg_param(args)...});
  }
  // False once the connection broke; it stays broken.
  bool healthy() const;
  // Whether the server is still there, without a round trip: reads what is waiting on the socket,
  // which shows a connection the server closed (a restart) before a statement is sent on it.
  bool still_connected();
  // True between BEGIN and its COMMIT or ROLLBACK (or when a failed transaction awaits ROLLBACK).
  bool in_transaction() const;

 private:
  pg_conn* connection_ = nullptr;
};

// BEGIN ... COMMIT, rolled back when destroyed uncommitted.
class PgTransaction {
 public:
  explicit PgTransaction(PgConnection& connection);
  ~PgTransaction();
  PgTransaction(const PgTransaction&) = delete;
  PgTransaction& operator=(const PgTransaction&) = delete;
  void commit();

 private:
  PgConnection& connection_;
  bool done_ = false;
};

// Up to `max_connections` connections, opened when needed and kept for reuse. A connection that
// broke is dropped together with every idle one (a server restart breaks them all), so the next
// request connects afresh instead of failing on a dead socket.
class PgPool {
 public:
  // A borrowed connection, given back to the pool when destroyed.
  class Borrowed {
   public:
    Borrowed(PgPool& pool, std::unique_ptr<PgConnection> connection);
    ~Borrowed();
    Borrowed(Borrowed&&) = default;
    Borrowed(const Borrowed&) = delete;
    Borrowed& operator=(const Borrowed&) = delete;
    PgConnection& operator*() { return *connection_; }
    PgConnection* operator->() { return connection_.get(); }

   private:
    PgPool* pool_;
    std::unique_ptr<PgConnection> connection_;
  };

  PgPool(std::string url, size_t max_connections);
  // Waits while every connection is in use; throws Error(kUnavailable) when none can be opened.
  Borrowed borrow();

 private:
  void give_back(std::unique_ptr<PgConnection> connection);

  const std::string url_;
  const size_t max_connections_;
  std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  size_t open_ = 0;  // idle and borrowed
};

}  // namespace df::store

// A thin layer over libpq.
#include "store/postgres_db.h"

#include <libpq-fe.h>
#include <poll.h>

#include <charconv>
#include <cstdlib>

#include "core/error.h"

namespace df::store {
namespace {

std::string trimmed(const char* message) {
  std::string text = message != nullptr ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text.empty() ? "unknown error" : text;
}

// The stable error code for a failure the server reported with SQLSTATE `state`.
ErrorCode code_for_state(std::string_view state) {
  const std::string_view error_class = state.substr(0, 2);
  if (error_class == "23") return ErrorCode::kConflict;  // integrity constraint violation
  // Connection exceptions, insufficient resources, operator intervention (shutdown), system
  // errors, serialization failures and deadlocks: the server cannot answer now; later it may.
  if (error_class == "08" || error_class == "53" || error_class == "57" || error_class == "58" ||
      state == "40001" || state == "40P01" || state == "55P03") {
    return ErrorCode::kUnavailable;
  }
  return ErrorCode::kInternal;
}

}  // namespace

PgParam pg_param(std::string_view value) { return std::string(value); }

PgParam pg_param(int64_t value) { return std::to_string(value); }

PgParam pg_param(double value) {
  char text[32];
  const auto result = std::to_chars(text, text + sizeof(text), value);
  return std::string(text, result.ptr);
}

PgParam pg_param(bool value) { return std::string(value ? "true" : "false"); }

PgParam pg_param(std::nullptr_t) { return std::nullopt; }

PgParam pg_param(const std::optional<int>& value) {
  return value ? pg_param(*value) : std::nullopt;
}

PgResult::PgResult(pg_result* result) : result_(result) {}

PgResult::~PgResult() { PQclear(result_); }

PgResult::PgResult(PgResult&& other) noexcept : result_(other.result_) { other.result_ = nullptr; }

int PgResult::rows() const { return PQntuples(result_); }

int64_t PgResult::affected() const {
  const char* count = PQcmdTuples(result_);
  return count != nullptr && *count ? std::strtoll(count, nullptr, 10) : 0;
}

std::string PgResult::text(int row, int column) const {
  return std::string(PQgetvalue(result_, row, column),
                     static_cast<size_t>(PQgetlength(result_, row, column)));
}

bool PgResult::is_null(int row, int column) const {
  return PQgetisnull(result_, row, column) == 1;
}

int64_t PgResult::integer(int row, int column) const {
  return std::strtoll(PQgetvalue(result_, row, column), nullptr, 10);
}

double PgResult::real(int row, int column) const {
  return std::strtod(PQgetvalue(result_, row, column), nullptr);
}

bool PgResult::boolean(int row, int column) const {
  return PQgetvalue(result_, row, column)[0] == 't';
}

PgConnection::PgConnection(const std::string& url) : connection_(PQconnectdb(url.c_str())) {
  if (connection_ == nullptr) throw Error(ErrorCode::kUnavailable, "database: out of memory");
  if (PQstatus(connection_) != CONNECTION_OK) {
    const std::string message = trimmed(PQerrorMessage(connection_));
    PQfinish(connection_);
    throw Error(ErrorCode::kUnavailable, "database: cannot connect to PostgreSQL: " + message);
  }
  // Notices (e.g. "relation already exists, skipping") are not errors; keep them off stderr.
  PQsetNoticeProcessor(connection_, [](void*, const char*) {}, nullptr);
}

PgConnection::~PgConnection() { PQfinish(connection_); }

PgResult PgConnection::exec(std::string_view sql, const std::vector<PgParam>& params) {
  const std::string statement(sql);
  pg_result* raw = nullptr;
  if (params.empty()) {
    raw = PQexec(connection_, statement.c_str());  // may hold several statements (migrations)
  } else {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& param : params) values.push_back(param ? param->c_str() : nullptr);
    raw = PQexecParams(connection_, statement.c_str(), static_cast<int>(values.size()), nullptr,
                       values.data(), nullptr, nullptr, 0);
  }
  PgResult result(raw);
  const auto status = raw != nullptr ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;
  const char* state = raw != nullptr ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
  const ErrorCode code = state == nullptr || PQstatus(connection_) != CONNECTION_OK
                             ? ErrorCode::kUnavailable
                             : code_for_state(state);
  throw Error(code, "database: " + trimmed(PQerrorMessage(connection_)),
              {{"sqlstate", state != nullptr ? state : ""}});
}

bool PgConnection::healthy() const { return PQstatus(connection_) == CONNECTION_OK; }

bool PgConnection::still_connected() {
  // A server that went away leaves its goodbye message and then the end of the stream: keep
  // reading while the socket has more, so that the end is seen too.
  for (int reads = 0; reads < 8; ++reads) {
    if (PQconsumeInput(connection_) != 1 || !healthy()) return false;
    pollfd socket{PQsocket(connection_), POLLIN, 0};
    if (::poll(&socket, 1, 0) <= 0) return true;
  }
  return healthy();
}

bool PgConnection::in_transaction() const {
  return PQtransactionStatus(connection_) != PQTRANS_IDLE;
}

PgTransaction::PgTransaction(PgConnection& connection) : connection_(connection) {
  connection_.exec("BEGIN");
}

PgTransaction::~PgTransaction() {
  if (done_ || !connection_.healthy()) return;
  try {
    connection_.exec("ROLLBACK");
  } catch (const Error&) {
    // The connection broke meanwhile: the server rolls the transaction back itself.
  }
}

void PgTransaction::commit() {
  connection_.exec("COMMIT");
  done_ = true;
}

PgPool::Borrowed::Borrowed(PgPool& pool, std::unique_ptr<PgConnection> connection)
    : pool_(&pool), connection_(std::move(connection)) {}

PgPool::Borrowed::~Borrowed() {
  if (connection_) pool_->give_back(std::move(connection_));
}

PgPool::PgPool(std::string url, size_t max_connections)
    : url_(std::move(url)), max_connections_(max_connections) {}

PgPool::Borrowed PgPool::borrow() {
  std::unique_lock lock(mutex_);
  returned_.wait(lock, [this] { return !idle_.empty() || open_ < max_connections_; });
  while (!idle_.empty()) {
    auto connection = std::move(idle_.back());
    idle_.pop_back();
    if (connection->still_connected()) return Borrowed(*this, std::move(connection));
    --open_;  // closed by the server (it restarted): open a fresh one instead
  }
  ++open_;
  lock.unlock();
  try {
    return Borrowed(*this, std::make_unique<PgConnection>(url_));
  } catch (...) {
    lock.lock();
    --open_;
    returned_.notify_one();
    throw;
  }
}

void PgPool::give_back(std::unique_ptr<PgConnection> connection) {
  std::lock_guard lock(mutex_);
  if (!connection->healthy()) {
    open_ -= 1 + idle_.size();
    idle_.clear();
  } else if (connection->in_transaction()) {
    --open_;  // left mid-transaction by an error: not safe to reuse
  } else {
    idle_.push_back(std::move(connection));
  }
  returned_.notify_all();
}

}  // namespace df::store

// Live news of appended events from PostgreSQL: LISTEN on a dedicated connection that reconnects.
#include "store/postgres_event_listener.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "core/error.h"

namespace df::store {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// The channels the events table's trigger notifies (migrations 002 and 003), with the job id as
// payload.
const char* listen_statement(DatabaseNews news) {
  return news == DatabaseNews::kEvents ? "LISTEN dreamforge_events" : "LISTEN dreamforge_queued";
}
// How long one wait on the socket lasts before the listener checks whether it should stop.
constexpr milliseconds kPollInterval(100);
// The longest a connection attempt, or the LISTEN after it, may take.
constexpr milliseconds kSetupTimeout(10000);
constexpr milliseconds kFirstRetryDelay(200);
constexpr milliseconds kLongestRetryDelay(5000);

using Connection = std::unique_ptr<PGconn, decltype(&PQfinish)>;

std::string message_of(PGconn* connection) {
  std::string text = PQerrorMessage(connection);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text.empty() ? "unknown error" : text;
}

// Waits up to `timeout` for the connection's socket to be ready for `events` (POLLIN or POLLOUT,
// or closed); true when it is.
bool socket_ready(PGconn* connection, short events, milliseconds timeout) {
  pollfd descriptor{PQsocket(connection), events, 0};
  const int ready = ::poll(&descriptor, 1, static_cast<int>(timeout.count()));
  if (ready < 0 && errno != EINTR) {
    throw Error(ErrorCode::kUnavailable,
                std::string("database: cannot wait for PostgreSQL: ") + std::strerror(errno));
  }
  return ready > 0;
}

// Waits for the socket like socket_ready() until `deadline`; throws Error(kTimeout) past it and
// Error(kCanceled) when the listener is stopping.
void wait_for_socket(PGconn* connection, short events, Clock::time_point deadline,
                     const std::stop_token& stop) {
  for (;;) {
    if (stop.stop_requested()) throw Error(ErrorCode::kCanceled, "event listener stopping");
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left <= milliseconds(0)) {
      throw Error(ErrorCode::kTimeout,
                  "database: PostgreSQL did not answer the event listener in " +
                      std::to_string(kSetupTimeout.count() / 1000) + " s");
    }
    if (socket_ready(connection, events, std::min(left, kPollInterval))) return;
  }
}

void consume_input(PGconn* connection) {
  if (PQconsumeInput(connection) == 0 || PQstatus(connection) != CONNECTION_OK) {
    throw Error(ErrorCode::kUnavailable,
                "database: the event listener lost its connection: " + message_of(connection));
  }
}

// Connects without blocking longer than a poll interval at a time. TCP keepalives (unless the URL
// sets its own) make a connection that silently went away count as broken within about 25 s.
Connection connect(const std::string& url, const std::stop_token& stop) {
  const char* const keywords[] = {"keepalives_idle", "keepalives_interval", "keepalives_count",
                                  "dbname", nullptr};
  const char* const values[] = {"10", "5", "3", url.c_str(), nullptr};
  Connection connection(PQconnectStartParams(keywords, values, 1), &PQfinish);
  if (!connection) throw Error(ErrorCode::kUnavailable, "database: out of memory");
  const auto deadline = Clock::now() + kSetupTimeout;
  auto state =
      PQstatus(connection.get()) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
  while (state != PGRES_POLLING_OK) {
    if (state == PGRES_POLLING_FAILED) {
      throw Error(ErrorCode::kUnavailable,
                  "database: cannot connect to PostgreSQL: " + message_of(connection.get()));
    }
    wait_for_socket(connection.get(), state == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline,
                    stop);
    state = PQconnectPoll(connection.get());
  }
  // Notices, such as the server announcing its shutdown, are not for the service's output.
  PQsetNoticeProcessor(
      connection.get(), [](void*, const char*) {}, nullptr);
  return connection;
}

void send_listen(PGconn* connection, DatabaseNews news, const std::stop_token& stop) {
  if (PQsendQuery(connection, listen_statement(news)) == 0) {
    throw Error(ErrorCode::kUnavailable, "database: cannot LISTEN: " + message_of(connection));
  }
  const auto deadline = Clock::now() + kSetupTimeout;
  std::string failure;
  for (;;) {
    while (PQisBusy(connection) == 1) {
      wait_for_socket(connection, POLLIN, deadline, stop);
      consume_input(connection);
    }
    PGresult* result = PQgetResult(connection);
    if (result == nullptr) break;
    if (PQresultStatus(result) != PGRES_COMMAND_OK) failure = message_of(connection);
    PQclear(result);
  }
  if (!failure.empty()) throw Error(ErrorCode::kUnavailable, "database: LISTEN failed: " + failure);
}

// The job ids of the notifications received so far, each once, in arrival order.
std::vector<std::string> take_job_ids(PGconn* connection) {
  std::vector<std::string> job_ids;
  while (PGnotify* raw = PQnotifies(connection)) {
    const std::unique_ptr<PGnotify, decltype(&PQfreemem)> notification(raw, &PQfreemem);
    std::string job_id = notification->extra;
    if (std::find(job_ids.begin(), job_ids.end(), job_id) == job_ids.end()) {
      job_ids.push_back(std::move(job_id));
    }
  }
  return job_ids;
}

}  // namespace

PostgresEventListener::PostgresEventListener(std::string database_url, DatabaseNews news,
                                             std::function<void(const std::string&)> on_news)
    : database_url_(std::move(database_url)),
      news_(news),
      on_news_(std::move(on_news)),
      thread_([this](std::stop_token stop) { run(stop); }) {}

PostgresEventListener::~PostgresEventListener() = default;  // thread_ stops and joins first

bool PostgresEventListener::listening() const { return listening_; }

void PostgresEventListener::run(std::stop_token stop) {
  milliseconds delay = kFirstRetryDelay;
  while (!stop.stop_requested()) {
    try {
      listen_once(stop);
    } catch (...) {
      // The connection could not be made or broke (or on_news failed): the loop tries again, and
      // whoever relies on the news polls the store meanwhile.
    }
    if (listening_.exchange(false)) delay = kFirstRetryDelay;  // it worked until now: start over
    pause(stop, delay);
    delay = std::min(delay * 2, kLongestRetryDelay);
  }
}

void PostgresEventListener::listen_once(std::stop_token stop) {
  const Connection connection = connect(database_url_, stop);
  send_listen(connection.get(), news_, stop);
  listening_ = true;
  on_news_("");
  while (!stop.stop_requested()) {
    if (!socket_ready(connection.get(), POLLIN, kPollInterval)) continue;
    consume_input(connection.get());
    for (const auto& job_id : take_job_ids(connection.get())) on_news_(job_id);
  }
}

void PostgresEventListener::pause(std::stop_token stop, milliseconds delay) {
  std::unique_lock lock(pause_mutex_);
  pause_.wait_for(lock, stop, delay, [] { return false; });
}

}  // namespace df::store

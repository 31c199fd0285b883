// Live news of appended events from PostgreSQL (LISTEN/NOTIFY), so that a process learns at once
// that another process, on any machine, appended events for a job.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>

namespace df::store {

// What a listener hears of.
enum class DatabaseNews {
  kEvents,      // every job with newly appended events (channel dreamforge_events)
  kQueuedJobs,  // every newly created job (channel dreamforge_queued)
};

// Listens on a dedicated connection (not from a pool), on its own thread, and calls on_news(job_id)
// there for every job with new events (or every new job), after the transaction that appended them
// committed (the events table's trigger of migrations 002 and 003 notifies). Several events of one job that arrive
// together are told once. After every (re)connect it calls on_news(""): anything may have changed
// meanwhile. A connection that cannot be made or breaks is tried again after 200 ms, doubling to
// 5 s, for as long as the listener lives; a failure inside on_news is handled like a broken
// connection. on_news should return quickly: it holds up the news after it.
class PostgresEventListener {
 public:
  // Starts listening on the database of the libpq URL ("postgres://user@host:port/db"); does not
  // fail when the database is down, it keeps trying.
  PostgresEventListener(std::string database_url, DatabaseNews news,
                        std::function<void(const std::string&)> on_news);
  // Stops and joins the thread, promptly whatever it was doing.
  ~PostgresEventListener();
  PostgresEventListener(const PostgresEventListener&) = delete;
  PostgresEventListener& operator=(const PostgresEventListener&) = delete;

  // Connected and LISTENing right now.
  bool listening() const;

 private:
  void run(std::stop_token stop);
  void listen_once(std::stop_token stop);
  // Sleeps for `delay`, or less when the listener stops meanwhile.
  void pause(std::stop_token stop, std::chrono::milliseconds delay);

  const std::string database_url_;
  const DatabaseNews news_;
  const std::function<void(const std::string&)> on_news_;
  std::atomic<bool> listening_ = false;
  std::mutex pause_mutex_;
  std::condition_variable_any pause_;
  std::jthread thread_;  // last: started once everything it uses exists, joined first
};

}  // namespace df::store

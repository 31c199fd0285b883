// The service's own log lines: echoed to the terminal and kept in a bounded in-memory ring.
#include "telemetry/service_log.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "core/json_text.h"

namespace df::telemetry {
namespace {

// Local time like Python's datetime.now().isoformat(): "2026-11-22T16:25:10.123456".
std::string local_timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                          now.time_since_epoch()).count() % 1'000'000;
  std::tm local{};
  localtime_r(&seconds, &local);
  char text[40];
  const size_t length = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &local);
  std::snprintf(text + length, sizeof text - length, ".%06lld", static_cast<long long>(micros));
  return text;
}

}  // namespace

ServiceLog::ServiceLog(size_t capacity, std::ostream& out, std::ostream& err)
    : capacity_(std::max<size_t>(capacity, 1)), out_(out), err_(err) {}

void ServiceLog::info(std::string_view line) { append(line, out_); }

void ServiceLog::error(std::string_view line) { append(line, err_); }

void ServiceLog::append(std::string_view line, std::ostream& terminal) {
  LogEntry entry{local_timestamp(), valid_utf8(line)};
  if (!entry.message.ends_with('\n')) entry.message += '\n';
  std::lock_guard lock(mutex_);
  terminal << entry.message << std::flush;
  if (entries_.size() == capacity_) entries_.pop_front();
  entries_.push_back(entry);
  for (const auto& [token, listener] : listeners_) listener(entry);
}

std::vector<LogEntry> ServiceLog::entries() const {
  std::lock_guard lock(mutex_);
  return {entries_.begin(), entries_.end()};
}

uint64_t ServiceLog::listen(Listener listener) {
  std::lock_guard lock(mutex_);
  listeners_.emplace(next_token_, std::move(listener));
  return next_token_++;
}

void ServiceLog::unlisten(uint64_t token) {
  std::lock_guard lock(mutex_);
  listeners_.erase(token);
}

ServiceLog& service_log() {
  static ServiceLog log(300, std::cout, std::cerr);
  return log;
}

}  // namespace df::telemetry

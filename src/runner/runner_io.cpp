// Runner I/O: request reading thread with immediate cancel/shutdown, and the event writer.
#include "runner/runner_io.h"

#include "core/error.h"
#include "runner/protocol.h"

namespace df::runner {

void EventWriter::emit(const nlohmann::json& event) {
  std::lock_guard lock(mutex_);
  out_ << encode_event(event);
  out_.flush();
}

RequestReader::RequestReader(std::istream& in, EventWriter& events)
    : in_(in), events_(events), thread_([this] { read_loop(); }) {}

RequestReader::~RequestReader() {
  // The reader blocks in getline; it ends with stdin. Detach so a shutdown does not wait on it.
  if (thread_.joinable()) thread_.detach();
}

void RequestReader::read_loop() {
  std::string line;
  while (std::getline(in_, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json request;
    std::optional<CancelRequest> cancel;
    try {
      request = parse_request_line(line);
      if (request["type"] == "cancel") cancel = std::get<CancelRequest>(parse_request(request));
    } catch (const Error& e) {
      events_.emit(ErrorEvent{"", std::nullopt, std::string(e.code_name()), e.what(), e.details()});
      continue;
    }
    const std::string type = request["type"].get<std::string>();
    std::lock_guard lock(mutex_);
    if (cancel) {
      canceled_run_ = cancel->id;
      continue;
    }
    if (type == "shutdown") shutdown_ = true;
    queue_.push_back(std::move(request));
    ready_.notify_one();
  }
  std::lock_guard lock(mutex_);
  end_of_input_ = true;
  shutdown_ = true;
  ready_.notify_one();
}

std::optional<nlohmann::json> RequestReader::next() {
  std::unique_lock lock(mutex_);
  ready_.wait(lock, [this] { return !queue_.empty() || end_of_input_; });
  if (queue_.empty()) return std::nullopt;
  nlohmann::json request = std::move(queue_.front());
  queue_.pop_front();
  return request;
}

bool RequestReader::cancel_requested(const std::string& run_id) const {
  std::lock_guard lock(mutex_);
  return shutdown_.load() || (!run_id.empty() && canceled_run_ == run_id);
}

void RequestReader::begin_run(const std::string& run_id) {
  std::lock_guard lock(mutex_);
  if (canceled_run_ != run_id) canceled_run_.clear();
}

}  // namespace df::runner

// A job's events as a Server-Sent Events stream.
#include "api/job_event_stream.h"

#include "api/job_views.h"

namespace df::api {

using Clock = std::chrono::steady_clock;

namespace {

constexpr int kReadBatch = 200;  // events read from the store at a time

}  // namespace

JobEventStream::JobEventStream(store::Store& store, EventHub& hub, std::string job_id,
                               int64_t after_id, StreamSettings settings, EventFrames frames)
    : store_(store),
      hub_(hub),
      job_id_(std::move(job_id)),
      last_id_(after_id),
      settings_(settings),
      frames_(std::move(frames)) {}

JobEventStream::~JobEventStream() {
  if (token_ != 0) hub_.unsubscribe(job_id_, token_);
}

void JobEventStream::set_wakeup(std::function<void()> wake) {
  token_ = hub_.subscribe(job_id_, std::move(wake));
}

std::string JobEventStream::next_chunk(bool& finished) {
  const auto now = Clock::now();
  const uint64_t version = hub_.version(job_id_);
  const bool news = version != seen_version_;
  const bool poll_due =
      read_due_ || now - last_read_ >= std::chrono::milliseconds(settings_.store_poll_ms);
  std::string out;
  if (first_) {
    out = "retry: 1000\n\n";  // reconnect quickly; the client resumes with Last-Event-ID
    first_ = false;
  }
  if (news || poll_due) {
    seen_version_ = version;
    last_read_ = now;
    read_due_ = false;
    const auto events = store_.events_after(job_id_, last_id_, kReadBatch);
    for (const auto& event : events) {
      out += frames_ ? frames_(event) : sse_frame(event);
      last_id_ = event.id;
      if (event.type == "job_finished") {
        finished = true;
        break;
      }
    }
    // A full batch leaves more waiting: read again on the next call instead of at the next poll.
    if (static_cast<int>(events.size()) == kReadBatch) read_due_ = true;
    if (events.empty()) {
      // Resumed after the final event: nothing more will come.
      auto job = store_.get_job(job_id_);
      if (job && is_terminal(job->status) && store_.events_after(job_id_, last_id_, 1).empty()) {
        finished = true;
      }
    }
  }
  if (out.empty() && !finished &&
      now - last_sent_ >= std::chrono::milliseconds(settings_.heartbeat_ms)) {
    out = ": heartbeat\n\n";
  }
  if (!out.empty()) last_sent_ = now;
  return out;
}

}  // namespace df::api

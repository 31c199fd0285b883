// A job's events as a Server-Sent Events stream: from an event id on, live, ending with the job.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "api/event_hub.h"
#include "http/message.h"
#include "store/store.h"

namespace df::api {

struct StreamSettings {
  int heartbeat_ms = 15000;     // a comment line when nothing else was sent for this long
  int store_poll_ms = 1000;     // re-read the store this often without news from the hub
};

// The SSE frame(s) of one event ("" to send nothing for it).
using EventFrames = std::function<std::string(const Event&)>;

class JobEventStream : public http::StreamSource {
 public:
  // Each event becomes `frames(event)`: by default its own frame (sse_frame).
  JobEventStream(store::Store& store, EventHub& hub, std::string job_id, int64_t after_id,
                 StreamSettings settings, EventFrames frames = {});
  ~JobEventStream() override;
  std::string next_chunk(bool& finished) override;
  void set_wakeup(std::function<void()> wake) override;

 private:
  store::Store& store_;
  EventHub& hub_;
  std::string job_id_;
  int64_t last_id_;
  StreamSettings settings_;
  EventFrames frames_;
  uint64_t token_ = 0;
  uint64_t seen_version_ = ~uint64_t{0};
  std::chrono::steady_clock::time_point last_read_{};
  bool read_due_ = true;  // the store must be read on the next call (first call, or more waiting)
  std::chrono::steady_clock::time_point last_sent_ = std::chrono::steady_clock::now();
  bool first_ = true;
};

}  // namespace df::api

// In-process fan-out of "this job has new events" from the worker to live streams (SSE).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace df::api {

class EventHub {
 public:
  using Waker = std::function<void()>;
  using JobWaker = std::function<void(const std::string& job_id)>;
  // Registers a callback for a job's news; returns a token for unsubscribe().
  uint64_t subscribe(const std::string& job_id, Waker waker);
  void unsubscribe(const std::string& job_id, uint64_t token);
  // Registers a callback for the news of every job, called with the job's id; returns a token for
  // unsubscribe_all().
  uint64_t subscribe_all(JobWaker waker);
  void unsubscribe_all(uint64_t token);
  // Called by whoever appended events for the job (the worker in the same process, or the
  // database's news of a worker elsewhere).
  void notify(const std::string& job_id);
  // notify() for every job someone subscribed to: news may have been missed (the database's news
  // connection was re-established).
  void notify_watched();
  // Changes whenever notify() is called for the job.
  uint64_t version(const std::string& job_id);

 private:
  std::mutex mutex_;
  uint64_t next_token_ = 1;
  std::map<std::string, std::map<uint64_t, Waker>> wakers_;
  std::map<uint64_t, JobWaker> all_wakers_;
  std::map<std::string, uint64_t> versions_;
};

}  // namespace df::api

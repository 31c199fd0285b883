// In-process fan-out of job news to live streams.
#include "api/event_hub.h"

#include <vector>

namespace df::api {

uint64_t EventHub::subscribe(const std::string& job_id, Waker waker) {
  std::lock_guard lock(mutex_);
  const uint64_t token = next_token_++;
  wakers_[job_id][token] = std::move(waker);
  return token;
}

void EventHub::unsubscribe(const std::string& job_id, uint64_t token) {
  std::lock_guard lock(mutex_);
  auto job = wakers_.find(job_id);
  if (job == wakers_.end()) return;
  job->second.erase(token);
  if (job->second.empty()) {
    wakers_.erase(job);
    versions_.erase(job_id);
  }
}

uint64_t EventHub::subscribe_all(JobWaker waker) {
  std::lock_guard lock(mutex_);
  const uint64_t token = next_token_++;
  all_wakers_[token] = std::move(waker);
  return token;
}

void EventHub::unsubscribe_all(uint64_t token) {
  std::lock_guard lock(mutex_);
  all_wakers_.erase(token);
}

void EventHub::notify(const std::string& job_id) {
  std::vector<Waker> to_call;
  std::vector<JobWaker> to_tell;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [token, waker] : all_wakers_) to_tell.push_back(waker);
    if (auto job = wakers_.find(job_id); job != wakers_.end()) {
      ++versions_[job_id];
      for (const auto& [token, waker] : job->second) to_call.push_back(waker);
    }
  }
  for (const auto& waker : to_call) waker();
  for (const auto& waker : to_tell) waker(job_id);
}

void EventHub::notify_watched() {
  std::vector<std::string> watched;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [job_id, wakers] : wakers_) watched.push_back(job_id);
  }
  for (const auto& job_id : watched) notify(job_id);
}

uint64_t EventHub::version(const std::string& job_id) {
  std::lock_guard lock(mutex_);
  auto found = versions_.find(job_id);
  return found == versions_.end() ? 0 : found->second;
}

}  // namespace df::api

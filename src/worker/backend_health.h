// What the workers of a process know of the ComfyUI servers they drive: up or down, their queues.
#pragma once

#include <string>

namespace df::worker {

// The service's backend catalog as the workers see it; backends go by runner id
// ("backend:<name>"). Thread-safe.
class BackendHealth {
 public:
  virtual ~BackendHealth() = default;
  // Whether the backend answered its last check (and no job saw it fail since).
  virtual bool up(const std::string& runner_id) const = 0;
  // Prompts running and pending on it (its other clients' too) at its last check.
  virtual int queue_remaining(const std::string& runner_id) const = 0;
  // A job saw it fail: no worker claims for it until a probe answers again.
  virtual void mark_down(const std::string& runner_id, const std::string& reason) = 0;
};

}  // namespace df::worker

// What each configured backend offers and whether it answers: discovery, refresh and health.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/backend_config.h"
#include "graph/node_schema.h"

namespace df::backends {

// What a backend can run: its node definitions and the model files in its folders.
struct BackendOffer {
  nlohmann::json object_info = nlohmann::json::object();  // its GET /object_info
  std::set<std::string> node_types;                        // the keys of object_info
  std::map<std::string, std::vector<std::string>> model_files;  // folder -> files (GET /models/..)
  std::string fingerprint;  // changes when object_info or the files change
};

struct BackendStatus {
  BackendSpec spec;
  bool up = false;
  bool discovered = false;      // an offer was read at least once (kept while it is down)
  std::string error;            // why it is down ("" while up)
  int64_t checked_ms = 0;       // wall clock of the last check
  int64_t changed_ms = 0;       // when `up` last changed
  int queue_remaining = 0;      // prompts running + pending on it at the last check
  BackendOffer offer;
};

// How often the catalog checks its backends (outside the class: a default argument needs it whole).
struct CatalogTiming {
  int64_t refresh_ms = 10000;
  int64_t probe_ms = 1000;
  int request_timeout_ms = 5000;
};

// Reads every backend's offer at start and keeps it fresh on a thread: up backends every
// `refresh_ms`, down ones every `probe_ms` until they answer again. Thread-safe.
class BackendCatalog {
 public:
  using Timing = CatalogTiming;
  explicit BackendCatalog(BackendConfig config, Timing timing = {});
  ~BackendCatalog();

  // Checks every backend once now (blocking), then keeps checking on a thread until destroyed.
  void start();
  // Checks one backend now (blocking): its offer when it changed, its queue, up/down.
  void check(const std::string& name);
  // A worker saw the backend fail (connection refused mid-job): down until a probe answers.
  void mark_down(const std::string& name, const std::string& reason);

  const BackendConfig& config() const { return config_; }
  std::vector<BackendStatus> snapshot() const;
  std::optional<BackendStatus> find(const std::string& name) const;
  // As find(), less the offer (an empty one): no copy of its node definitions, which a real
  // ComfyUI server's /object_info makes a deep copy of about 0.5 MB of JSON. Workers ask this
  // before every claim.
  std::optional<BackendStatus> state(const std::string& name) const;
  // Called when a backend comes up, goes down or changes its offer, on the thread whose check()
  // or mark_down() saw it (the catalog's own thread for its periodic checks), outside the lock.
  void on_change(std::function<void(const BackendStatus&)> listener);

 private:
  void loop(std::stop_token stop);

  BackendConfig config_;
  Timing timing_;
  mutable std::mutex mutex_;
  std::condition_variable_any wake_;  // the loop's wait between rounds, cut short by stopping
  std::map<std::string, BackendStatus> status_;
  std::map<std::string, int64_t> offer_read_ms_;  // when each offer was last read
  std::vector<std::function<void(const BackendStatus&)>> listeners_;
  std::jthread thread_;
};

}  // namespace df::backends

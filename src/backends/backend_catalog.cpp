// What each configured backend offers and whether it answers, kept fresh on a thread.
#include "backends/backend_catalog.h"

#include <chrono>

#include "backends/comfy_client.h"
#include "core/error.h"
#include "core/ids.h"
#include "core/sha256.h"

namespace df::backends {
namespace {

// The model files in every folder the server lists; none when it has no /models route.
std::map<std::string, std::vector<std::string>> read_model_files(ComfyClient& client) {
  std::map<std::string, std::vector<std::string>> files;
  std::vector<std::string> folders;
  try {
    folders = client.model_folders();
  } catch (const Error& error) {
    if (error.code() != ErrorCode::kNotFound) throw;
    return files;
  }
  for (const auto& folder : folders) {
    try {
      files[folder] = client.model_files(folder);
    } catch (const Error& error) {
      if (error.code() != ErrorCode::kNotFound) throw;
    }
  }
  return files;
}

BackendOffer read_offer(ComfyClient& client) {
  BackendOffer offer;
  offer.object_info = client.object_info();
  for (const auto& [type, definition] : offer.object_info.items()) offer.node_types.insert(type);
  offer.model_files = read_model_files(client);
  const std::string content = offer.object_info.dump() + nlohmann::json(offer.model_files).dump();
  offer.fingerprint = sha256_hex(content.data(), content.size());
  return offer;
}

// One look at a backend: its queue always, its offer when asked; `error` says why it failed.
struct Reading {
  std::optional<BackendOffer> offer;
  int queue_remaining = 0;
  std::string error;
};

Reading read_backend(const BackendSpec& spec, bool with_offer, int timeout_ms) {
  Reading reading;
  try {
    ComfyClient client({spec.base_url(), spec.auth_header, timeout_ms});
    if (with_offer) reading.offer = read_offer(client);
    reading.queue_remaining = client.queue_remaining();
  } catch (const Error& error) {
    const bool not_running = spec.started_by_us() && error.code() == ErrorCode::kUnavailable;
    reading.error = not_running ? "not started: " + std::string(error.what()) : error.what();
  } catch (const std::exception& error) {  // a well-formed answer of an unexpected shape
    reading.error = "ComfyUI server " + spec.base_url() + " answered unexpectedly: " + error.what();
  }
  return reading;
}

}  // namespace

BackendCatalog::BackendCatalog(BackendConfig config, Timing timing)
    : config_(std::move(config)), timing_(timing) {
  for (const auto& spec : config_.backends) {
    BackendStatus status;
    status.spec = spec;
    status.error = "not checked yet";
    status_.emplace(spec.name, std::move(status));
  }
}

BackendCatalog::~BackendCatalog() {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
}

void BackendCatalog::start() {
  if (thread_.joinable()) throw Error(ErrorCode::kInternal, "the backend catalog starts once");
  for (const auto& spec : config_.backends) check(spec.name);
  thread_ = std::jthread([this](std::stop_token stop) { loop(stop); });
}

void BackendCatalog::loop(std::stop_token stop) {
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, stop, std::chrono::milliseconds(timing_.probe_ms),
                     [] { return false; });
    }
    for (const auto& spec : config_.backends) {
      if (stop.stop_requested()) return;
      check(spec.name);
    }
  }
}

void BackendCatalog::check(const std::string& name) {
  bool with_offer = true;
  BackendSpec spec;
  {
    std::lock_guard lock(mutex_);
    auto found = status_.find(name);
    if (found == status_.end()) throw Error(ErrorCode::kNotFound, "no backend named '" + name + "'");
    const BackendStatus& status = found->second;
    spec = status.spec;
    auto read_at = offer_read_ms_.find(name);
    with_offer = !status.up || read_at == offer_read_ms_.end() ||
                 now_ms() - read_at->second >= timing_.refresh_ms;
  }
  Reading reading = read_backend(spec, with_offer, timing_.request_timeout_ms);

  std::optional<BackendStatus> changed;
  std::vector<std::function<void(const BackendStatus&)>> listeners;
  {
    std::lock_guard lock(mutex_);
    BackendStatus& status = status_.at(name);
    const bool was_up = status.up;
    const std::string fingerprint = status.offer.fingerprint;
    const int64_t now = now_ms();
    status.checked_ms = now;
    status.up = reading.error.empty();
    status.error = reading.error;
    if (status.up) {
      status.queue_remaining = reading.queue_remaining;
      if (reading.offer) {
        status.offer = std::move(*reading.offer);
        status.discovered = true;
        offer_read_ms_[name] = now;
      }
    }
    if (status.up != was_up) status.changed_ms = now;
    if (status.up != was_up || status.offer.fingerprint != fingerprint) {
      changed = status;
      listeners = listeners_;
    }
  }
  if (changed) {
    for (const auto& listener : listeners) listener(*changed);
  }
}

void BackendCatalog::mark_down(const std::string& name, const std::string& reason) {
  std::optional<BackendStatus> changed;
  std::vector<std::function<void(const BackendStatus&)>> listeners;
  {
    std::lock_guard lock(mutex_);
    auto found = status_.find(name);
    if (found == status_.end()) throw Error(ErrorCode::kNotFound, "no backend named '" + name + "'");
    BackendStatus& status = found->second;
    status.error = reason;
    if (!status.up) return;
    status.up = false;
    status.changed_ms = now_ms();
    changed = status;
    listeners = listeners_;
  }
  for (const auto& listener : listeners) listener(*changed);
}

std::vector<BackendStatus> BackendCatalog::snapshot() const {
  std::lock_guard lock(mutex_);
  std::vector<BackendStatus> statuses;
  for (const auto& spec : config_.backends) statuses.push_back(status_.at(spec.name));
  return statuses;
}

std::optional<BackendStatus> BackendCatalog::find(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto found = status_.find(name);
  if (found == status_.end()) return std::nullopt;
  return found->second;
}

std::optional<BackendStatus> BackendCatalog::state(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto found = status_.find(name);
  if (found == status_.end()) return std::nullopt;
  const BackendStatus& status = found->second;
  BackendStatus state;
  state.spec = status.spec;
  state.up = status.up;
  state.discovered = status.discovered;
  state.error = status.error;
  state.checked_ms = status.checked_ms;
  state.changed_ms = status.changed_ms;
  state.queue_remaining = status.queue_remaining;
  return state;
}

void BackendCatalog::on_change(std::function<void(const BackendStatus&)> listener) {
  std::lock_guard lock(mutex_);
  listeners_.push_back(std::move(listener));
}

}  // namespace df::backends

// The ComfyUI servers Dream Forge drives as backends, as <data>/config/backends.yaml declares them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace df::backends {

// One backend: a server that already runs (`url`) or one started on demand (`command`).
struct BackendSpec {
  std::string name;                  // [A-Za-z0-9_.-]{1,64}, unique
  std::string url;                   // http://host:port of a running server; "" with `command`
  std::string auth_header;           // "Name: value" sent with every request; "" for none
  std::vector<std::string> command;  // argv that starts one; "{port}" in any word is the port
  int port = 0;                      // the port a started server listens on (command only)
  std::string device = "cpu";        // "cpu" or "cuda:N": whose memory a started server uses
  int64_t memory_need_bytes = 0;     // GPU memory a started server needs (its budget check)
  int64_t idle_timeout_ms = 5 * 60 * 1000;  // a started server idle this long is stopped
  int max_instances = 1;             // jobs it runs at once (one worker each)
  int64_t start_timeout_ms = 120000; // a started server must answer /object_info within this

  bool started_by_us() const { return !command.empty(); }
  // `url`, or http://127.0.0.1:<port> for a started one.
  std::string base_url() const;
  // "backend:<name>": its runner id in job routing, the roster and metrics.
  std::string runner_id() const { return "backend:" + name; }
};

struct BackendConfig {
  std::vector<BackendSpec> backends;
};

// <data_dir>/config/backends.yaml
std::filesystem::path backends_config_path(const std::string& data_dir);

// Reads the file; a missing file is an empty config. Throws Error(kInvalidArgument) naming the
// file, the line and the field for anything malformed (unknown fields included).
BackendConfig load_backend_config(const std::filesystem::path& path);
BackendConfig parse_backend_config(const std::string& yaml_text, const std::string& origin);

}  // namespace df::backends

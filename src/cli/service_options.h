// Settings of `dreamforge serve|api|worker`: flags, DREAMFORGE_* variables and their defaults.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "pixels/pixels_messages.h"

namespace df::cli {

struct ServiceOptions {
  std::string data_dir = "dreamforge-data";
  std::string host = "127.0.0.1";
  uint16_t port = 8188;
  std::string database_url;  // default sqlite:///<data>/dreamforge.sqlite3
  std::string storage_url;   // default file:///<data>/artifacts
  std::string queue_url = "db";
  std::string models_dir;    // default <data>/models
  std::string runner;        // default: dreamforge-runner next to this binary
  std::string comfy_runner;  // drives the backends of backends.yaml; default: next to this binary
  std::string device = "auto";
  std::vector<std::string> devices;  // --devices: one worker per entry ("0", "1", "cpu")
  std::optional<int64_t> gpu_memory_mb;  // what routed jobs must fit in on a GPU
  std::string dtype = "auto";
  int64_t model_ram_budget_mb = 0;   // host memory a runner's loaded models may hold (0: its default)
  int64_t model_vram_budget_mb = 0;  // device memory a runner's loaded models may hold (0: its default)
  std::string default_model;
  int workers = 1;
  double step_timeout_s = 1800;
  double runner_silence_timeout_s = 600;  // 0: a silent runner is never taken for hung
  double kill_grace_s = 5;
  double lease_s = 15;
  double retry_base_s = 2;
  int64_t memory_epsilon_mb = 64;       // a step may leave this much behind (AC-1)
  double memory_release_wait_s = 10;   // bound of the wait for a stopped runner's memory (AC-2)
  double runner_idle_stop_s = 300;     // a runner idle this long is stopped (0: never)
  int64_t runner_memory_need_mb = 0;   // a native runner's GPU memory need to start (0: unchecked)
  int max_attempts = 3;
  int64_t max_body_bytes = 32 * 1024 * 1024;
  int64_t url_ttl_s = 3600;
  int http_threads = 4;
  // Host names (a reverse proxy's) accepted in Host and Origin besides the bound address.
  std::vector<std::string> allowed_hosts;
  std::string front_end_root;  // the ComfyUI web frontend served at /; default: the installed one
  // Serve a non-loopback address although no API key exists (something else guards it).
  bool allow_unauthenticated = false;
  // Webhooks: internal targets they may reach anyway (names, addresses, networks), the retry
  // schedule's first wait, one attempt's limit, and how many are sent at once (0: none from here).
  std::vector<std::string> webhook_allowed_targets;
  double webhook_retry_base_s = 5;
  double webhook_timeout_s = 10;
  int webhook_senders = 4;
  // Models fetched at once for POST /v1/models:download (0: the API does not download models).
  int model_downloads = 0;
  // The DGX-Pixels endpoint (ZeroMQ + MessagePack): off unless --zmq.
  bool zmq = false;
  std::string zmq_req_addr = pixels::kDefaultReqAddress;  // its REQ-REP requests
  std::string zmq_pub_addr = pixels::kDefaultPubAddress;  // its PUB-SUB updates

  // Resolved paths below the data directory.
  std::string checkpoints_dir() const;
  std::string input_dir() const;   // LoadImage reads here (ComfyUI's input folder)
  std::string output_dir() const;  // SaveImage writes here (ComfyUI's output folder)
  std::string temp_dir() const;    // PreviewImage writes here
  std::string user_dir() const;    // ComfyUI user data of the single user (settings, workflows)
  // Makes the data directory absolute and fills the database, storage and models defaults below
  // it (all a command that only touches the models and the database needs).
  void resolve_paths();
  // resolve_paths(), then the runner (when this process runs native workers: `runs_workers` and
  // --workers or --devices) and frontend defaults, checks of every setting (throws Error naming
  // the variable when something is misconfigured) and the data folders.
  void resolve(bool runs_workers);
  // The URL-signing secret: DREAMFORGE_SECRET, else <data>/secret.key (created on first use).
  std::string signing_secret() const;
  // The secret that signs webhooks of jobs whose API key has none: DREAMFORGE_WEBHOOK_SECRET
  // ("whsec_..."), "" when unset; throws Error(kInvalidArgument) when it is malformed.
  std::string webhook_secret() const;
};

// Adds the flags of `part` ("serve", "api" or "worker") to a subcommand.
void add_service_options(CLI::App& command, ServiceOptions& options, const std::string& part);
// --data-dir and --database-url alone, as the service reads them: for commands that only open
// the service's database (migrate, keys).
void add_database_options(CLI::App& command, ServiceOptions& options);

// Reads KEY=VALUE lines of ./.env into the environment (variables already set win).
void load_dotenv(const std::string& path = ".env");

}  // namespace df::cli

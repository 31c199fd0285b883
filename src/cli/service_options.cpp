// Settings of the service commands.
#include "cli/service_options.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>

#include "cli/front_end_location.h"
#include "cli/runner_location.h"
#include "core/error.h"
#include "core/files.h"
#include "core/ids.h"
#include "webhooks/webhook_signature.h"
#include "worker/device_pool.h"

namespace df::cli {

namespace fs = std::filesystem;

std::string ServiceOptions::checkpoints_dir() const { return (fs::path(models_dir) / "checkpoints").string(); }
std::string ServiceOptions::input_dir() const { return (fs::path(data_dir) / "input").string(); }
std::string ServiceOptions::output_dir() const { return (fs::path(data_dir) / "output").string(); }
std::string ServiceOptions::temp_dir() const { return (fs::path(data_dir) / "temp").string(); }
std::string ServiceOptions::user_dir() const {
  return (fs::path(data_dir) / "user" / "default").string();
}

void ServiceOptions::resolve_paths() {
  data_dir = fs::absolute(data_dir).lexically_normal().string();
  if (database_url.empty()) database_url = "sqlite://" + (fs::path(data_dir) / "dreamforge.sqlite3").string();
  if (storage_url.empty()) storage_url = "file://" + (fs::path(data_dir) / "artifacts").string();
  if (models_dir.empty()) models_dir = (fs::path(data_dir) / "models").string();
  models_dir = fs::absolute(models_dir).lexically_normal().string();
}

void ServiceOptions::resolve(bool runs_workers) {
  resolve_paths();
  // `dreamforge api`, or --workers 0 without --devices: no native runner (backends only, or
  // workers elsewhere).
  if (runner.empty() && runs_workers && (workers > 0 || !devices.empty())) {
    runner = runner_executable();
  }
  if (front_end_root.empty()) front_end_root = installed_front_end_root();
  if (!front_end_root.empty() && !fs::is_regular_file(fs::path(front_end_root) / "index.html")) {
    throw Error(ErrorCode::kInvalidArgument,
                "DREAMFORGE_FRONT_END_ROOT: no index.html in '" + front_end_root + "'");
  }
  if (workers < 0 || workers > 64) throw Error(ErrorCode::kInvalidArgument, "DREAMFORGE_WORKERS must be 0..64");
  if (worker::parse_device_list(devices).size() > 64) {
    throw Error(ErrorCode::kInvalidArgument, "DREAMFORGE_DEVICES lists more than 64 devices");
  }
  if (step_timeout_s <= 0 || kill_grace_s <= 0 || lease_s <= 0 || retry_base_s < 0 ||
      runner_silence_timeout_s < 0) {
    throw Error(ErrorCode::kInvalidArgument, "timeouts, grace, lease and retry delays must be positive");
  }
  for (const auto& dir : {data_dir, checkpoints_dir(), input_dir(), output_dir(), temp_dir(),
                          user_dir()}) {
    fs::create_directories(dir);
  }
}

std::string ServiceOptions::signing_secret() const {
  if (const char* secret = std::getenv("DREAMFORGE_SECRET"); secret != nullptr && *secret) {
    if (std::string(secret).size() < 16) {
      throw Error(ErrorCode::kInvalidArgument, "DREAMFORGE_SECRET must be at least 16 characters");
    }
    return secret;
  }
  const std::string path = (fs::path(data_dir) / "secret.key").string();
  if (!fs::exists(path)) {
    const std::string fresh = random_hex(32);
    write_file_atomically(path, std::vector<uint8_t>(fresh.begin(), fresh.end()));
    ::chmod(path.c_str(), 0600);
  }
  auto bytes = read_file_bytes(path);
  return std::string(bytes.begin(), bytes.end());
}

std::string ServiceOptions::webhook_secret() const {
  const char* secret = std::getenv("DREAMFORGE_WEBHOOK_SECRET");
  if (secret == nullptr || *secret == 0) return "";
  webhooks::webhook_secret_key(secret, "DREAMFORGE_WEBHOOK_SECRET");  // throws when malformed
  return secret;
}

void add_service_options(CLI::App& command, ServiceOptions& o, const std::string& part) {
  const bool api = part != "worker";
  const bool worker = part != "api";
  command.add_option("--data-dir", o.data_dir, "Where the database, artifacts and models live")
      ->envname("DREAMFORGE_DATA_DIR")->capture_default_str();
  command.add_option("--database-url", o.database_url, "sqlite:///path or postgres://user@host:port/db (default: SQLite in the data dir)")
      ->envname("DREAMFORGE_DATABASE_URL");
  command.add_option("--storage-url", o.storage_url, "file:///path or s3://bucket?endpoint=URL&region=R (default: in the data dir)")
      ->envname("DREAMFORGE_STORAGE_URL");
  command.add_option("--queue-url", o.queue_url, "db")->envname("DREAMFORGE_QUEUE_URL")->capture_default_str();
  command.add_option("--models-dir", o.models_dir, "Models root (checkpoints/ below it)")
      ->envname("DREAMFORGE_MODELS_DIR");
  command.add_option("--max-attempts", o.max_attempts, "Attempts per job before it fails")
      ->envname("DREAMFORGE_MAX_ATTEMPTS")->capture_default_str()->check(CLI::Range(1, 10));
  // The API routes jobs for the workers' device, so both halves know it.
  command.add_option("--device", o.device, "auto, cpu or cuda")->envname("DREAMFORGE_DEVICE")->capture_default_str();
  command.add_option("--gpu-memory-mb", o.gpu_memory_mb,
                     "Memory of the workers' GPU in MiB (routing picks models that fit)")
      ->envname("DREAMFORGE_GPU_MEMORY_MB")->check(CLI::PositiveNumber);
  if (api) {
    command.add_option("--host", o.host, "Address to bind")->envname("DREAMFORGE_HOST")->capture_default_str();
    command.add_option("--port", o.port, "Port to bind (0 picks a free one)")
        ->envname("DREAMFORGE_PORT")->capture_default_str();
    command.add_option("--default-model", o.default_model, "Model of jobs that name none")
        ->envname("DREAMFORGE_DEFAULT_MODEL");
    command.add_option("--max-body-bytes", o.max_body_bytes, "Largest request body")
        ->envname("DREAMFORGE_MAX_BODY_BYTES")->capture_default_str();
    command.add_option("--url-ttl", o.url_ttl_s, "Seconds a signed artifact URL stays valid")
        ->envname("DREAMFORGE_URL_TTL")->capture_default_str();
    command.add_option("--front-end-root", o.front_end_root,
                       "ComfyUI web frontend folder served at / (default: the installed package)")
        ->envname("DREAMFORGE_FRONT_END_ROOT");
    command.add_option("--allowed-hosts", o.allowed_hosts,
                       "Host names besides the bound address that browsers may use to reach the "
                       "service (a reverse proxy's public name; * for any), comma-separated")
        ->envname("DREAMFORGE_ALLOWED_HOSTS")->delimiter(',');
    command.add_flag("--allow-unauthenticated", o.allow_unauthenticated,
                     "Listen on a non-loopback --host although no API key exists (dreamforge "
                     "keys create): only where something else (a proxy, a private network) guards it")
        ->envname("DREAMFORGE_ALLOW_UNAUTHENTICATED");
    command.add_option("--http-threads", o.http_threads, "Threads serving HTTP")
        ->envname("DREAMFORGE_HTTP_THREADS")->capture_default_str()->check(CLI::Range(1, 64));
    command.add_option("--webhook-allowed-targets", o.webhook_allowed_targets,
                       "Internal webhook targets allowed anyway: host names, addresses and "
                       "networks (127.0.0.1, 10.0.0.0/8), comma-separated")
        ->envname("DREAMFORGE_WEBHOOK_ALLOWED_TARGETS")->delimiter(',');
    command.add_option("--webhook-retry-base", o.webhook_retry_base_s,
                       "Seconds before a failed webhook's first retry (later ones wait up to "
                       "3600 times as long; 12 attempts)")
        ->envname("DREAMFORGE_WEBHOOK_RETRY_BASE")->capture_default_str()->check(CLI::Range(0.001, 3600.0));
    command.add_option("--webhook-timeout", o.webhook_timeout_s, "Seconds one webhook attempt may take")
        ->envname("DREAMFORGE_WEBHOOK_TIMEOUT")->capture_default_str()->check(CLI::Range(0.1, 300.0));
    command.add_option("--webhook-senders", o.webhook_senders,
                       "Webhooks this process sends at once (0: it sends none)")
        ->envname("DREAMFORGE_WEBHOOK_SENDERS")->capture_default_str()->check(CLI::Range(0, 64));
    command.add_option("--model-downloads", o.model_downloads,
                       "Models this process fetches at once for admins' POST /v1/models:download "
                       "(0: that route is refused)")
        ->envname("DREAMFORGE_MODEL_DOWNLOADS")->capture_default_str()->check(CLI::Range(0, 16));
    command.add_flag("--zmq", o.zmq, "Also serve the DGX-Pixels protocol (ZeroMQ + MessagePack)")
        ->envname("DREAMFORGE_ZMQ");
    command.add_option("--zmq-req-addr", o.zmq_req_addr, "ZeroMQ address of its requests (REQ-REP)")
        ->envname("DREAMFORGE_ZMQ_REQ_ADDR")->capture_default_str();
    command.add_option("--zmq-pub-addr", o.zmq_pub_addr, "ZeroMQ address of its updates (PUB-SUB)")
        ->envname("DREAMFORGE_ZMQ_PUB_ADDR")->capture_default_str();
  }
  if (worker) {
    command.add_option("--runner", o.runner, "Runner executable (default: dreamforge-runner beside this one)")
        ->envname("DREAMFORGE_RUNNER");
    command.add_option("--comfy-runner", o.comfy_runner,
                       "Runner executable of the ComfyUI servers in <data>/config/backends.yaml "
                       "(default: dreamforge-comfy-runner beside this one)")
        ->envname("DREAMFORGE_COMFY_RUNNER");
    command.add_option("--dtype", o.dtype, "auto, float32, float16 or bfloat16")
        ->envname("DREAMFORGE_DTYPE")->capture_default_str();
    command.add_option("--workers", o.workers,
                       "Workers with a native runner each (0: none, e.g. a front for the ComfyUI "
                       "servers of backends.yaml, which get workers of their own)")
        ->envname("DREAMFORGE_WORKERS")->capture_default_str();
    command.add_option("--devices", o.devices,
                       "One worker per device, its runner pinned to it: GPU indices in NVML's "
                       "(PCI bus) order and/or cpu, comma-separated, e.g. 0,1 (instead of --workers)")
        ->envname("DREAMFORGE_DEVICES")->delimiter(',');
    command.add_option("--step-timeout", o.step_timeout_s, "Seconds a job step may run")
        ->envname("DREAMFORGE_STEP_TIMEOUT")->capture_default_str();
    command.add_option("--runner-silence-timeout", o.runner_silence_timeout_s,
                       "Seconds a runner may send nothing mid-run before it is stopped as hung and "
                       "the job retried (runner_hung); 0: never")
        ->envname("DREAMFORGE_RUNNER_SILENCE_TIMEOUT")->capture_default_str();
    command.add_option("--kill-grace", o.kill_grace_s, "Seconds between TERM and KILL")
        ->envname("DREAMFORGE_KILL_GRACE")->capture_default_str();
    command.add_option("--lease", o.lease_s, "Seconds a claim lasts without a heartbeat")
        ->envname("DREAMFORGE_LEASE")->capture_default_str();
    command.add_option("--retry-base", o.retry_base_s, "Seconds before the first retry (doubles)")
        ->envname("DREAMFORGE_RETRY_BASE")->capture_default_str();
    command.add_option("--model-ram-budget-mb", o.model_ram_budget_mb,
                       "Host memory in MiB each runner's loaded models may hold; beyond it the least "
                       "recently used are evicted (default: half the machine's memory)")
        ->envname("DREAMFORGE_MODEL_RAM_BUDGET_MB")->check(CLI::NonNegativeNumber);
    command.add_option("--model-vram-budget-mb", o.model_vram_budget_mb,
                       "Device memory in MiB each runner's loaded models may hold (default: the "
                       "device's memory less a working reserve)")
        ->envname("DREAMFORGE_MODEL_VRAM_BUDGET_MB")->check(CLI::NonNegativeNumber);
    command.add_option("--memory-epsilon-mb", o.memory_epsilon_mb,
                       "MiB a step may leave behind in its runner beyond the models it keeps warm")
        ->envname("DREAMFORGE_MEMORY_EPSILON_MB")->capture_default_str()->check(CLI::NonNegativeNumber);
    command.add_option("--memory-release-wait", o.memory_release_wait_s,
                       "Seconds to wait for a stopped runner's memory before marking its job")
        ->envname("DREAMFORGE_MEMORY_RELEASE_WAIT")->capture_default_str()->check(CLI::NonNegativeNumber);
    command.add_option("--runner-idle-stop-s", o.runner_idle_stop_s,
                       "Seconds a runner may stay idle before it is stopped (the next job starts it "
                       "again); 0: never")
        ->envname("DREAMFORGE_RUNNER_IDLE_STOP_S")->capture_default_str()->check(CLI::NonNegativeNumber);
    command.add_option("--runner-memory-need-mb", o.runner_memory_need_mb,
                       "GPU memory in MiB a native runner needs to start; a runner started for a "
                       "job on a GPU gets it first (idle runners and backends this service started "
                       "there are stopped, least recently used first) or the job fails "
                       "insufficient_memory; 0: not checked")
        ->envname("DREAMFORGE_RUNNER_MEMORY_NEED_MB")->capture_default_str()->check(CLI::NonNegativeNumber);
  }
}

void load_dotenv(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    const auto equals = line.find('=', start);
    if (equals == std::string::npos) continue;
    std::string key = line.substr(start, equals - start);
    std::string value = line.substr(equals + 1);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
    if (key.rfind("export ", 0) == 0) key = key.substr(7);
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    ::setenv(key.c_str(), value.c_str(), /*overwrite=*/0);
  }
}

void add_database_options(CLI::App& command, ServiceOptions& options) {
  command.add_option("--data-dir", options.data_dir, "Where the default SQLite database lives")
      ->envname("DREAMFORGE_DATA_DIR")
      ->capture_default_str();
  command
      .add_option("--database-url", options.database_url,
                  "sqlite:///path or postgres://user@host:port/database (default: SQLite in the "
                  "data dir)")
      ->envname("DREAMFORGE_DATABASE_URL");
}

}  // namespace df::cli

// `dreamforge serve|api|worker`: assembles the backends, the API server and the workers.
#include "cli/cmd_serve.h"

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unistd.h>
#include <vector>

#include "api/access_policy.h"
#include "api/api_service.h"
#include "api/comfy_files.h"
#include "api/comfy_jobs.h"
#include "api/comfy_logs.h"
#include "api/comfy_prompts.h"
#include "api/comfy_settings.h"
#include "api/comfy_system.h"
#include "api/comfy_user_defaults.h"
#include "api/comfy_userdata.h"
#include "api/comfy_websocket.h"
#include "api/comfy_workflow_library.h"
#include "api/backend_view.h"
#include "api/event_hub.h"
#include "api/job_intake.h"
#include "api/model_download_requests.h"
#include "api/login_page.h"
#include "backends/backend_catalog.h"
#include "backends/backend_config.h"
#include "blob/blob_store.h"
#include "core/job_spec.h"
#include "gpu/nvml.h"
#include "gpu/runner_roster.h"
#include "cli/catalog_health.h"
#include "cli/runner_location.h"
#include "cli/service_options.h"
#include "http/request_guard.h"
#include "http/server.h"
#include "http/static_files.h"
#include "pixels/server/pixels_endpoint.h"
#include "queue/queue.h"
#include "registry/device_profile.h"
#include "registry/model_registry.h"
#include "registry/routing_table.h"
#include "runner/container/container_runners.h"
#include "runner/container/runners_config.h"
#include "store/postgres_event_listener.h"
#include "store/store.h"
#include "telemetry/metrics.h"
#include "telemetry/service_log.h"
#include "telemetry/service_metrics.h"
#include "download/model_download_jobs.h"
#include "webhooks/webhook_dispatcher.h"
#include "worker/device_pool.h"
#include "worker/runner_lifecycle.h"
#include "worker/worker.h"

namespace df::cli {
namespace {

constexpr int64_t kSessionLifetimeS = 12 * 3600;  // a signed-in browser's session

std::string worker_id(int index) {
  char host[256] = "host";
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid()) + ":" + std::to_string(index);
}

// The ComfyUI web frontend at / (the sign-in page first while keys are required) and every path no
// other route claims.
void serve_front_end(http::Router& router, const std::string& root, api::LoginPage& login) {
  router.add("GET", "/", [root, &login](http::Request& request) {
    if (auto redirect = login.redirect_if_signed_out(request)) return *redirect;
    return http::static_file_response(root, "");
  });
  router.add("GET", "/{path...}", [root](http::Request& request) {
    return http::static_file_response(root, request.path_params.at("path"));
  });
}

// A subscription to the news of every job, ended when it goes.
class AllNewsSubscription {
 public:
  AllNewsSubscription(api::EventHub& hub, api::EventHub::JobWaker waker)
      : hub_(hub), token_(hub.subscribe_all(std::move(waker))) {}
  ~AllNewsSubscription() { hub_.unsubscribe_all(token_); }
  AllNewsSubscription(const AllNewsSubscription&) = delete;
  AllNewsSubscription& operator=(const AllNewsSubscription&) = delete;

 private:
  api::EventHub& hub_;
  uint64_t token_;
};

// One worker thread with its runner.
struct WorkerSlot {
  worker::WorkerSettings settings;
  std::unique_ptr<worker::RunnerSupervisor> runner;
  std::unique_ptr<worker::Worker> worker;
  std::jthread thread;
};

class Service {
 public:
  Service(ServiceOptions options, bool with_api, bool with_workers)
      : options_(std::move(options)), with_api_(with_api), with_workers_(with_workers) {
    if (with_workers_) read_runners_config();
    options_.resolve(with_workers);
    telemetry::declare_service_metrics(metrics_);
    store_ = store::open_store(options_.database_url);
    queue_ = queue::open_queue(options_.queue_url, *store_);
    blobs_ = blob::open_blob_store(options_.storage_url, options_.signing_secret());
    models_ = std::make_unique<registry::ModelRegistry>(
        *store_, options_.checkpoints_dir(), registry::registry_scope_for(options_.database_url));
    routing_ = registry::load_routing_table_or_default(registry::routing_table_path(options_.data_dir));
    for (const auto& warning : models_->sync()) log_.info("dreamforge: warning: " + warning);
    start_backend_catalog();
  }

  void run() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // threads started below inherit the mask

    if (with_workers_) {
      start_workers();
      listen_for_queued_jobs();
    }
    std::unique_ptr<http::Server> server;
    http::Router router;
    std::unique_ptr<api::BackendView> backend_view;  // what the backends offer, per request
    std::unique_ptr<api::WorkflowRouter> workflows;  // validation and routing of new jobs
    std::unique_ptr<api::JobIntake> intake;
    std::unique_ptr<download::ModelDownloadJobs> model_downloads;  // --model-downloads
    std::unique_ptr<api::ModelDownloadRequests> model_download_requests;
    std::unique_ptr<api::ApiService> api;
    std::unique_ptr<api::ComfyPrompts> comfy_prompts;
    std::unique_ptr<api::ComfyWebSocketHub> comfy_ws;
    std::unique_ptr<api::ComfyJobs> comfy_jobs;
    std::unique_ptr<api::ComfySystem> comfy_system;
    std::unique_ptr<api::ComfyFiles> comfy_files;
    std::unique_ptr<api::ComfyUserData> comfy_userdata;
    std::unique_ptr<api::ComfySettings> comfy_settings;
    std::unique_ptr<api::ComfyLogs> comfy_logs;  // after comfy_ws: stops sending before it goes
    std::unique_ptr<pixels::PixelsEndpoint> pixels_endpoint;  // --zmq; after what it uses
    std::unique_ptr<api::AccessPolicy> access;  // API keys
    std::unique_ptr<api::LoginPage> login;      // the frontend's sign-in
    std::unique_ptr<webhooks::WebhookDispatcher> webhook_sender;  // first to stop: it renders with `api`
    std::optional<AllNewsSubscription> webhook_news;  // wakes it; ends before it goes
    if (with_api_) {
      api::ApiSettings settings;
      settings.jobs.default_model = options_.default_model;
      settings.jobs.default_max_attempts = options_.max_attempts;
      settings.jobs.input_dir = options_.input_dir();
      settings.jobs.routing = &routing_;
      settings.jobs.device = registry::device_profile(options_.device, options_.gpu_memory_mb,
                                                      "DREAMFORGE_GPU_MEMORY_MB");
      settings.url_ttl_seconds = options_.url_ttl_s;
      if (with_workers_) settings.runner_executable = options_.runner;
      settings.runners = &runners_;
      listen_for_database_news();
      // Workers elsewhere and no news from the database: re-read the store sooner.
      if (!with_workers_ && !news_listener_) settings.streams.store_poll_ms = 250;
      // Native runners: this process's native workers; `dreamforge api` cannot tell, so it
      // counts on them.
      const bool native_runners =
          !with_workers_ || options_.workers > 0 || !options_.devices.empty();
      api::BackendStates backend_states;
      if (catalog_) {
        settings.backends = [this] { return catalog_->snapshot(); };
        backend_view = std::make_unique<api::BackendView>(*catalog_);
        backend_states = [&backend_view] { return backend_view->states(); };
      }
      workflows = std::make_unique<api::WorkflowRouter>(*models_, options_.input_dir(),
                                                        native_runners, backend_states);
      intake = std::make_unique<api::JobIntake>(*store_, *queue_, metrics_, *workflows);
      if (options_.model_downloads > 0) {
        model_downloads = start_model_downloads();
        model_download_requests = std::make_unique<api::ModelDownloadRequests>(
            *store_, metrics_, [&model_downloads] { model_downloads->wake(); });
        settings.model_downloads = model_download_requests.get();
      }
      const webhooks::TargetPolicy webhook_targets(options_.webhook_allowed_targets);
      const std::string webhook_secret = options_.webhook_secret();
      intake->set_webhook_rules(webhook_targets, !webhook_secret.empty());
      api = std::make_unique<api::ApiService>(*store_, *blobs_, *models_, *queue_, hub_, metrics_,
                                              *intake, settings);
      api->register_routes(router);
      if (options_.webhook_senders > 0) {
        webhook_sender = std::make_unique<webhooks::WebhookDispatcher>(
            *store_, webhook_settings(webhook_secret), webhook_targets, metrics_,
            [&api](const Job& job, const Event& event, const std::string& name) {
              return api->webhook_data(job, event, name);
            });
        webhook_news.emplace(hub_, [&webhook_sender](const std::string&) { webhook_sender->wake(); });
      }
      const nlohmann::json feature_flags = {{"supports_preview_metadata", true},
                                            {"max_upload_size", options_.max_body_bytes}};
      comfy_ws = std::make_unique<api::ComfyWebSocketHub>(*store_, hub_, feature_flags);
      api::ComfyPromptHooks hooks;
      hooks.job_created = [&comfy_ws](const std::string& id) { comfy_ws->follow(id); };
      hooks.queue_changed = [&comfy_ws] { comfy_ws->broadcast_status(); };
      hooks.free_memory = [this] {
        for (auto& slot : slots_) slot->worker->request_free();
      };
      comfy_prompts =
          std::make_unique<api::ComfyPrompts>(*store_, *intake, options_.max_attempts, hooks);
      comfy_prompts->register_routes(router);
      comfy_ws->register_routes(router);
      if (options_.zmq) pixels_endpoint = start_pixels_endpoint(*api);
      {
        std::lock_guard lock(live_image_mutex_);
        live_image_sink_ = [&comfy_ws, &pixels_endpoint](const Job& job, LiveImage image) {
          if (pixels_endpoint) pixels_endpoint->on_live_image(job, image);
          comfy_ws->send_live_image(job_client_id(job), job.id, std::move(image));
        };
      }
      comfy_jobs = std::make_unique<api::ComfyJobs>(*store_);
      comfy_jobs->register_routes(router);
      comfy_system = std::make_unique<api::ComfySystem>(*models_, options_.input_dir(),
                                                        feature_flags, runners_, *workflows);
      comfy_system->register_routes(router);
      comfy_files = std::make_unique<api::ComfyFiles>(
          api::ComfyFolders{options_.input_dir(), options_.output_dir(), options_.temp_dir()},
          *store_, *blobs_, options_.url_ttl_s);
      comfy_files->register_routes(router);
      api::install_user_defaults(options_.user_dir());
      api::install_workflow_library(options_.user_dir(), models_->available());
      comfy_userdata = std::make_unique<api::ComfyUserData>(options_.user_dir());
      comfy_userdata->register_routes(router);
      comfy_settings = std::make_unique<api::ComfySettings>(options_.user_dir());
      comfy_settings->register_routes(router);
      comfy_logs = std::make_unique<api::ComfyLogs>(
          log_, [&comfy_ws](const std::string& client_id, const nlohmann::json& message) {
            return comfy_ws->send_to(client_id, message);
          });
      comfy_logs->register_routes(router);
      access = std::make_unique<api::AccessPolicy>(*store_, options_.signing_secret());
      router.set_access_check([&access](http::Request& request, const http::Route& route) {
        access->check(request, route);
      });
      refuse_open_public_address(*access);
      login = std::make_unique<api::LoginPage>(*access, kSessionLifetimeS);
      login->register_routes(router);
      if (!options_.front_end_root.empty()) serve_front_end(router, options_.front_end_root, *login);
      http::ServerLimits limits;
      limits.max_body_bytes = static_cast<size_t>(options_.max_body_bytes);
      // SaveImageWebsocket sends whole PNGs (tens of MB for very large images) to /ws clients.
      limits.websocket_max_queued_bytes = size_t{256} << 20;
      limits.threads = options_.http_threads;
      limits.allowed_hosts = options_.allowed_hosts;
      server = std::make_unique<http::Server>(router, limits, [this](const http::RequestRecord& r) {
        if (r.status >= 500) {
          log_.error("dreamforge: " + r.method + " " + r.route + " answered " +
                     std::to_string(r.status) + " (correlation id " + r.correlation_id + ")" +
                     (r.error.empty() ? "" : ": " + r.error));
        }
        metrics_.increment(telemetry::kHttpRequests,
                           {{"method", r.method}, {"route", r.route}, {"status", std::to_string(r.status)}});
        metrics_.observe(telemetry::kHttpDuration, {{"route", r.route}}, r.seconds);
      });
      server->start(options_.host, options_.port);
      log_.info("dreamforge: serving http://" + options_.host + ":" +
                std::to_string(server->port()) + " (data: " + options_.data_dir +
                ", workers: " + std::to_string(slots_.size()) + ", API keys: " +
                (access->keys_required() ? "required" : "none, every client is admin") + ")");
    } else {
      log_.info("dreamforge: worker running " + std::to_string(slots_.size()) +
                " runner(s) (data: " + options_.data_dir + ")");
    }
    int signal = 0;
    sigwait(&signals, &signal);
    log_.info(std::string("dreamforge: stopping (") + strsignal(signal) + ")");
    if (server) server->stop();
    webhook_news.reset();
    webhook_sender.reset();
    {
      std::lock_guard lock(live_image_mutex_);
      live_image_sink_ = nullptr;  // the hub goes away with this scope
    }
    pixels_endpoint.reset();
    for (auto& slot : slots_) slot->thread.request_stop();
    queue_->wake();
    slots_.clear();  // joins: a running job is handed back to the queue first
  }

 private:
  // The threads that run POST /v1/models:download's jobs into this process's models folder.
  std::unique_ptr<download::ModelDownloadJobs> start_model_downloads() {
    download::ModelDownloadSettings settings;
    settings.concurrency = options_.model_downloads;
    const std::string first_worker = worker_id(0);  // host:pid:0
    settings.worker_id = first_worker.substr(0, first_worker.rfind(':')) + ":downloads";
    return std::make_unique<download::ModelDownloadJobs>(
        *store_, *models_, download::ModelLayout(options_.models_dir), metrics_, settings,
        [this](const std::string& job_id) { hub_.notify(job_id); });
  }

  webhooks::WebhookSettings webhook_settings(const std::string& secret) const {
    webhooks::WebhookSettings settings;
    settings.secret = secret;
    settings.retry_base_ms = static_cast<int64_t>(options_.webhook_retry_base_s * 1000);
    settings.timeout_ms = static_cast<int64_t>(options_.webhook_timeout_s * 1000);
    settings.senders = options_.webhook_senders;
    return settings;
  }

  // The ComfyUI servers of backends.yaml: read, checked once now, then kept fresh on a thread.
  void start_backend_catalog() {
    auto config = backends::load_backend_config(backends::backends_config_path(options_.data_dir));
    if (config.backends.empty()) return;
    catalog_ = std::make_unique<backends::BackendCatalog>(std::move(config),
                                                          backends::BackendCatalog::Timing{});
    if (with_workers_) start_started_backends();
    catalog_->start();
    backend_health_ = std::make_unique<CatalogHealth>(*catalog_);
  }

  // Without API keys anyone who reaches the address is admin: only loopback, unless told otherwise.
  void refuse_open_public_address(api::AccessPolicy& access) {
    if (http::is_loopback_host(options_.host) || access.keys_required()) return;
    if (options_.allow_unauthenticated) {
      log_.error("dreamforge: warning: listening on " + options_.host +
                " without API keys (--allow-unauthenticated): whoever reaches it is admin");
      return;
    }
    throw Error(ErrorCode::kInvalidArgument,
                "refusing to listen on " + options_.host +
                    " without API keys: whoever reached it would be admin. Create a key first "
                    "(dreamforge keys create --name admin --scope admin), bind a loopback address, "
                    "or pass --allow-unauthenticated when something else guards the address");
  }

  // The DGX-Pixels endpoint (--zmq) on the API's jobs; throws naming the option whose address
  // cannot be bound.
  std::unique_ptr<pixels::PixelsEndpoint> start_pixels_endpoint(api::ApiService& api) {
    pixels::PixelsEndpointSettings settings{
        options_.zmq_req_addr, options_.zmq_pub_addr, options_.models_dir,
        (std::filesystem::path(options_.temp_dir()) / "previews").string(), options_.url_ttl_s};
    auto endpoint =
        std::make_unique<pixels::PixelsEndpoint>(api, *store_, *models_, *blobs_, hub_, settings);
    log_.info("dreamforge: DGX-Pixels endpoint: requests on " + options_.zmq_req_addr +
              ", updates on " + options_.zmq_pub_addr);
    return endpoint;
  }

  // What every worker of this process shares but its id.
  worker::WorkerSettings worker_settings(int index) const {
    worker::WorkerSettings settings;
    settings.worker_id = worker_id(index);
    settings.lease_ms = static_cast<int64_t>(options_.lease_s * 1000);
    settings.heartbeat_ms = std::max<int64_t>(100, settings.lease_ms / 4);
    settings.step_timeout_ms = static_cast<int64_t>(options_.step_timeout_s * 1000);
    settings.runner_silence_ms = static_cast<int64_t>(options_.runner_silence_timeout_s * 1000);
    settings.retry_base_ms = static_cast<int64_t>(options_.retry_base_s * 1000);
    settings.memory_epsilon_bytes = options_.memory_epsilon_mb << 20;
    settings.memory_release_wait_ms = static_cast<int64_t>(options_.memory_release_wait_s * 1000);
    settings.runner_memory_need_bytes = options_.runner_memory_need_mb << 20;
    // A runner that keeps models warm is not stopped when idle.
    settings.runner_idle_stop_ms =
        prewarm_.empty() ? static_cast<int64_t>(options_.runner_idle_stop_s * 1000) : 0;
    settings.prewarm = prewarm_;
    settings.output_dir = options_.output_dir();
    settings.temp_dir = options_.temp_dir();
    return settings;
  }

  void start_workers() {
    pool_ = std::make_unique<worker::DevicePool>(runners_, *store_, backend_health_.get());
    resolve_prewarm();
    remove_leftover_runner_containers();
    start_native_workers();
    start_backend_workers();
    if (slots_.empty()) {
      log_.info("dreamforge: no runner in this process (--workers 0 and no backends in " +
                backends::backends_config_path(options_.data_dir).string() +
                "): jobs wait for workers elsewhere");
    }
  }

  void start_native_workers() {
    // --devices: one worker per device, its runner pinned to it; else --workers on --device.
    const std::vector<std::string> devices = worker::parse_device_list(options_.devices);
    const int count = devices.empty() ? options_.workers : static_cast<int>(devices.size());
    for (int i = 0; i < count; ++i) {
      worker::RunnerSettings runner;
      worker::WorkerDevice device{options_.device == "auto" ? "" : options_.device, false};
      if (!devices.empty()) {
        device = {devices[i], true};
        runner.environment = worker::runner_device_environment(devices[i]);
        runner.pinned_device = devices[i];
      }
      runner.argv = {options_.runner, "--models-dir", options_.checkpoints_dir(), "--input-dir",
                     options_.input_dir(), "--device",
                     device.pinned ? worker::runner_device_flag(device.device) : options_.device,
                     "--dtype", options_.dtype};
      if (options_.model_ram_budget_mb > 0) {
        runner.argv.insert(runner.argv.end(),
                           {"--ram-budget-mb", std::to_string(options_.model_ram_budget_mb)});
      }
      if (options_.model_vram_budget_mb > 0) {
        runner.argv.insert(runner.argv.end(),
                           {"--vram-budget-mb", std::to_string(options_.model_vram_budget_mb)});
      }
      runner.container = container_launch(runners_config_.native,
                                          {options_.models_dir, options_.input_dir()},
                                          device.pinned ? device.device : unpinned_gpu_device());
      start_worker(std::move(runner), std::move(device));
    }
  }

  // The routing table's `prewarm` model ids as the checkpoints the native runners load at start (an
  // id that is not installed, or has no single checkpoint file, is logged and left out).
  void resolve_prewarm() {
    for (const auto& id : routing_.prewarm) {
      const auto model = models_->find(id);
      if (model && !model->ckpt_name.empty()) {
        prewarm_.push_back({model->ckpt_name, model->family});
      } else {
        log_.error("dreamforge: prewarm: " +
                   (model ? "'" + id + "' has no checkpoint file CheckpointLoaderSimple loads"
                          : "no model '" + id + "' is installed") +
                   "; it is not kept warm");
      }
    }
  }

  // The servers of backends.yaml with a `command`: started once now, so that the catalog reads what
  // they offer, then stopped once idle and started again by the next job (within their device's
  // memory budget).
  void start_started_backends() {
    for (const auto& spec : catalog_->config().backends) {
      if (!spec.started_by_us()) continue;
      if (!started_backends_) {
        started_backends_ = std::make_unique<worker::StartedBackends>(options_.data_dir, budget_);
      }
      if (auto failed = started_backends_->start_for_job(spec)) {
        log_.error("backend " + spec.name + ": " + (*failed)["message"].get<std::string>());
      }
    }
    if (!started_backends_) return;
    started_backends_->watch_idle(
        [this](const std::string& runner_id) {
          for (const auto& runner : runners_.all()) {
            if (runner.runner_id == runner_id && runner.state == "busy") return true;
          }
          return false;
        },
        1000);
  }

  // max_instances workers for each backend, each driving it through its own comfy runner.
  void start_backend_workers() {
    if (!catalog_) return;
    if (options_.comfy_runner.empty()) options_.comfy_runner = comfy_runner_executable();
    for (const auto& spec : catalog_->config().backends) {
      for (int i = 0; i < spec.max_instances; ++i) {
        worker::RunnerSettings runner;
        runner.argv = {options_.comfy_runner, "--url", spec.base_url(), "--input-dir",
                       options_.input_dir(), "--name", spec.name};
        // The secret goes in the runner's environment: argv shows in every process list.
        if (!spec.auth_header.empty()) {
          runner.environment.push_back("DREAMFORGE_COMFY_AUTH_HEADER=" + spec.auth_header);
        }
        runner.pinned_device = spec.runner_id();  // its steps name the backend, not a device here
        runner.container = container_launch(runners_config_.comfy, {options_.input_dir()}, "");
        std::function<std::optional<nlohmann::json>(const Job&)> before_start;
        if (spec.started_by_us()) {
          const worker::WorkerSettings settings = worker_settings(0);  // lease timings: all share them
          before_start = [this, spec, settings](const Job& job) {
            return started_backends_->start_for_job(
                spec, worker::lease_keeper(*store_, job, settings.lease_ms, settings.heartbeat_ms));
          };
        }
        start_worker(std::move(runner), worker::WorkerDevice{"backend", false, spec.runner_id()},
                     std::move(before_start));
      }
    }
  }

  // runners.yaml. A kind whose runners run in containers needs no runner executable here (the
  // image's entrypoint is the runner): its engine client stands in for it (/readyz checks it).
  void read_runners_config() {
    runners_config_ = runner::load_runners_config(runner::runners_config_path(options_.data_dir));
    if (runners_config_.native.isolation == runner::Isolation::kContainer &&
        options_.runner.empty()) {
      options_.runner = runner::engine_client_path(runners_config_.native.container.engine);
    }
    if (runners_config_.comfy.isolation == runner::Isolation::kContainer &&
        options_.comfy_runner.empty()) {
      options_.comfy_runner = runner::engine_client_path(runners_config_.comfy.container.engine);
    }
  }

  // How a runner of `kind` runs in a container (nullopt: as a subprocess): `read_only` folders and
  // the output and temp folders mounted, with the GPU of `gpu_device`.
  std::optional<runner::ContainerLaunch> container_launch(const runner::KindIsolation& kind,
                                                          const std::vector<std::string>& read_only,
                                                          const std::string& gpu_device) const {
    if (kind.isolation != runner::Isolation::kContainer) return std::nullopt;
    return runner::container_launch(kind.container, options_.data_dir, read_only,
                                    {options_.output_dir(), options_.temp_dir()}, gpu_device);
  }

  // The GPUs an unpinned runner's container gets: every GPU for --device cuda, or auto on a
  // machine with one; none for the CPU.
  std::string unpinned_gpu_device() const {
    if (options_.device == "auto") {
      const auto nvml = gpu::system_nvml();
      return nvml && !nvml->devices().empty() ? "cuda" : "cpu";
    }
    return options_.device;
  }

  // Runner containers of this data directory whose worker crashed are removed before any starts.
  void remove_leftover_runner_containers() {
    std::vector<std::string> engines;
    for (const auto* kind : {&runners_config_.native, &runners_config_.comfy}) {
      if (kind->isolation != runner::Isolation::kContainer) continue;
      if (std::find(engines.begin(), engines.end(), kind->container.engine) == engines.end()) {
        engines.push_back(kind->container.engine);
      }
    }
    for (const auto& engine : engines) {
      try {
        for (const auto& name :
             runner::remove_leftover_runner_containers(engine, options_.data_dir, 20000)) {
          log_.info("dreamforge: removed runner container " + name + " left by a stopped worker");
        }
      } catch (const Error& e) {
        log_.error(std::string("dreamforge: ") + e.what());
      }
    }
  }

  // A worker thread driving `runner` on `device`.
  void start_worker(worker::RunnerSettings runner, worker::WorkerDevice device,
                    std::function<std::optional<nlohmann::json>(const Job&)> before_start = nullptr) {
    auto slot = std::make_unique<WorkerSlot>();
    slot->settings = worker_settings(static_cast<int>(slots_.size()));
    runner.kill_grace_ms = static_cast<int>(options_.kill_grace_s * 1000);
    slot->runner = std::make_unique<worker::RunnerSupervisor>(runner);
    worker::WorkerContext context{*store_, *queue_, *blobs_, *slot->runner, metrics_, slot->settings,
                                  [this](const std::string& job_id) { hub_.notify(job_id); },
                                  [this](const Job& job, LiveImage image) {
                                    std::lock_guard lock(live_image_mutex_);
                                    if (live_image_sink_) live_image_sink_(job, std::move(image));
                                  },
                                  std::stop_token(), std::move(before_start)};
    slot->worker = std::make_unique<worker::Worker>(context, *pool_, std::move(device), budget_);
    auto* worker = slot->worker.get();
    slot->thread = std::jthread([worker](std::stop_token stop) { worker->run(stop); });
    slots_.push_back(std::move(slot));
  }

  // News of events that workers in other processes append, pushed by PostgreSQL (LISTEN/NOTIFY);
  // SQLite has none, so live streams poll the store.
  void listen_for_database_news() {
    if (!store::is_postgres_url(options_.database_url)) return;
    news_listener_ = std::make_unique<store::PostgresEventListener>(
        options_.database_url, store::DatabaseNews::kEvents, [this](const std::string& job_id) {
          if (job_id.empty()) {
            hub_.notify_watched();  // (re)connected: news may have been missed meanwhile
          } else {
            metrics_.increment(telemetry::kDatabaseNews);
            hub_.notify(job_id);
          }
        });
  }

  // Workers claiming from the database queue hear of jobs created by API processes elsewhere at
  // once, instead of at their next look at the table (PostgreSQL LISTEN/NOTIFY).
  void listen_for_queued_jobs() {
    if (!store::is_postgres_url(options_.database_url) || queue_->kind() != "db") return;
    queued_listener_ = std::make_unique<store::PostgresEventListener>(
        options_.database_url, store::DatabaseNews::kQueuedJobs,
        [this](const std::string&) { queue_->wake(); });
  }

  ServiceOptions options_;
  bool with_api_;
  bool with_workers_;
  telemetry::ServiceLog& log_ = telemetry::service_log();  // also read by the Logs panel
  telemetry::Metrics metrics_;
  api::EventHub hub_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<queue::Queue> queue_;
  std::unique_ptr<store::PostgresEventListener> news_listener_;
  std::unique_ptr<store::PostgresEventListener> queued_listener_;
  std::unique_ptr<blob::BlobStore> blobs_;
  std::unique_ptr<registry::ModelRegistry> models_;
  registry::RoutingTable routing_;  // function and quality tiers, presets
  std::vector<worker::PrewarmModel> prewarm_;  // what native runners load at start
  runner::RunnersConfig runners_config_;  // how each kind of runner is isolated (runners.yaml)
  // This process's runners by device: the workers write their runner's state, /healthz and
  // /system_stats read it (empty in `dreamforge api`, which runs no workers).
  gpu::RunnerRoster runners_;
  // The ComfyUI servers of backends.yaml (null without any): one catalog for the whole process.
  std::unique_ptr<backends::BackendCatalog> catalog_;
  std::unique_ptr<CatalogHealth> backend_health_;  // the catalog as the workers see it
  // The GPU memory budget native runners and started backend servers of this process share.
  std::shared_ptr<worker::DeviceBudget> budget_ = std::make_shared<worker::DeviceBudget>();
  // The backend servers this process starts (null without any): after the roster, which it reads.
  std::unique_ptr<worker::StartedBackends> started_backends_;
  // The workers' devices: claims in turn, warm hand-offs, rotation (before the workers: they use it).
  std::unique_ptr<worker::DevicePool> pool_;
  std::vector<std::unique_ptr<WorkerSlot>> slots_;
  // Where workers' live images go: latent previews and streamed whole images (the ComfyUI
  // WebSocket hub while the API runs).
  std::mutex live_image_mutex_;
  std::function<void(const Job&, LiveImage)> live_image_sink_;
};

void add_service_command(CLI::App& app, const std::string& name, const std::string& description,
                         bool with_api, bool with_workers) {
  auto options = std::make_shared<ServiceOptions>();
  CLI::App* command = app.add_subcommand(name, description);
  add_service_options(*command, *options, name);
  command->callback([options, with_api, with_workers] {
    Service(*options, with_api, with_workers).run();
  });
}

}  // namespace

void register_service_commands(CLI::App& app) {
  add_service_command(app, "serve", "Run the API and a worker in one process (embedded backends)",
                      true, true);
  add_service_command(app, "api", "Run only the HTTP API against the configured backends", true, false);
  add_service_command(app, "worker", "Run only workers against the configured backends", false, true);
}

}  // namespace df::cli

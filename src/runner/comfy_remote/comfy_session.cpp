// ComfySession: typed requests in, ComfyUI calls out, runner events back, as the native runner does.
#include "runner/comfy_remote/comfy_session.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>

#include "backends/comfy_errors.h"
#include "core/ids.h"
#include "runner/batch_items.h"
#include "runner/comfy_remote/comfy_prompt.h"
#include "runner/comfy_remote/comfy_uploads.h"
#include "runner/protocol.h"
#include "worker/process_memory.h"

namespace df::runner {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kRetryMs = 250;

int64_t elapsed_ms(Clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
}

backends::ComfyEndpoint endpoint_of(const ComfyRunnerOptions& options) {
  return {options.url, options.auth_header, options.timeout_ms};
}

// "cuda:0" from /system_stats' first device ({"type": "cuda", "index": 0}), "cpu" for the CPU.
std::string device_of(const json& stats) {
  const json devices = stats.value("devices", json::array());
  if (!devices.is_array() || devices.empty() || !devices[0].is_object()) return "cpu";
  const std::string type = devices[0].value("type", "cpu");
  const json index = devices[0].value("index", json());
  return type != "cpu" && index.is_number_integer() ? type + ":" + std::to_string(index.get<int>()) : type;
}

// The choices of `class_type`'s input `name` in /object_info (KSampler's sampler_name, ...).
std::vector<std::string> combo_choices(const json& object_info, const char* class_type, const char* name) {
  std::vector<std::string> choices;
  const json spec = object_info.value(class_type, json::object())
                        .value("input", json::object())
                        .value("required", json::object())
                        .value(name, json::array());
  if (spec.is_array() && !spec.empty() && spec[0].is_array()) {
    for (const auto& choice : spec[0]) {
      if (choice.is_string()) choices.push_back(choice.get<std::string>());
    }
  }
  return choices;
}

}  // namespace

ComfySession::ComfySession(const ComfyRunnerOptions& options, EventWriter& events, RequestReader& requests)
    : options_(options),
      backend_(options.name.empty() ? options.url : options.name + " (" + options.url + ")"),
      events_(events),
      requests_(requests),
      client_(endpoint_of(options)),
      client_id_(new_uuid_v7()) {}

ComfySession::~ComfySession() = default;

int ComfySession::serve() {
  while (auto message = requests_.next()) {
    Request request;
    try {
      request = parse_request(*message);
    } catch (const Error& e) {
      report_error(e, "", std::nullopt);
      continue;
    }
    if (std::holds_alternative<ShutdownRequest>(request)) break;
    if (const auto* hello_request = std::get_if<HelloRequest>(&request)) {
      try {
        hello(*hello_request);
      } catch (const Error& e) {
        report_error(e, "", std::nullopt);
        if (e.code() == ErrorCode::kUnavailable) return 1;
      }
    } else if (const auto* run_request = std::get_if<RunRequest>(&request)) {
      run(*run_request);
    } else if (std::holds_alternative<FreeRequest>(request)) {
      try {
        free();
      } catch (const Error& e) {
        report_error(e, "", std::nullopt);
      }
    }
    if (requests_.shutdown_requested() && !std::holds_alternative<RunRequest>(request)) break;
  }
  if (socket_) socket_->close();
  events_.emit(to_json(ByeEvent{}));
  return 0;
}

void ComfySession::hello(const HelloRequest& request) {
  check_hello_request(request);
  RunnerCapabilities capabilities;
  json stats;
  try {
    object_info_ = client_.object_info();
    for (const auto& folder : client_.model_folders()) capabilities.model_files[folder] = client_.model_files(folder);
    stats = client_.system_stats();
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kUnavailable) throw;
    throw Error(ErrorCode::kUnavailable, "the ComfyUI server at " + options_.url + " cannot be reached: " + e.what(),
                {{"backend", options_.url}});
  }
  capabilities.kind = "comfy";
  for (const auto& [class_type, definition] : object_info_.items()) capabilities.nodes.push_back(class_type);
  capabilities.object_info = object_info_;
  capabilities.samplers = combo_choices(object_info_, "KSampler", "sampler_name");
  capabilities.schedulers = combo_choices(object_info_, "KSampler", "scheduler");
  capabilities.formats = {"png"};  // the server's SaveImage writes PNG
  std::set<std::string> device_types;
  for (const auto& device : stats.value("devices", json::array())) {
    if (device.is_object() && device.contains("type") && device["type"].is_string()) {
      device_types.insert(device["type"].get<std::string>());
    }
  }
  capabilities.devices.assign(device_types.begin(), device_types.end());
  capabilities.device = device_of(stats);
  capabilities.backend_url = options_.url;
  read_server_memory(stats);
  events_.emit(to_json(HelloEvent{kProtocolVersion, "dreamforge-comfy-runner", "0.1.0", capabilities}));
}

const json& ComfySession::object_info() {
  if (object_info_.is_null()) object_info_ = client_.object_info();
  return object_info_;
}

void ComfySession::free() {
  client_.free_memory();
  read_server_memory();
  events_.emit(to_json(FreedEvent{memory_report()}));
}

json ComfySession::memory_report() const {
  json memory = {{"process_rss_bytes", 0}};
  if (const auto own = worker::read_process_memory(getpid())) memory["process_rss_bytes"] = own->resident_bytes;
  if (server_memory_.is_object()) memory.update(server_memory_);
  return memory;
}

void ComfySession::read_server_memory(const json& stats) {
  server_memory_ = nullptr;
  json read = stats;
  if (read.is_null()) {
    try {
      read = client_.system_stats();
    } catch (const Error&) {
      return;  // the server is not answering: what this process holds is all there is to say
    }
  }
  const json devices = read.value("devices", json::array());
  const json device = devices.is_array() && !devices.empty() ? devices[0] : json::object();
  const json system = read.value("system", json::object());
  const auto bytes = [](const json& object, const char* key) {
    return object.is_object() && object.contains(key) && object[key].is_number_integer() ? object[key].get<int64_t>()
                                                                                           : int64_t{0};
  };
  server_memory_ = {{"device", device_of(read)},
                    {"backend",
                     {{"url", options_.url},
                      {"vram_total_bytes", bytes(device, "vram_total")},
                      {"vram_free_bytes", bytes(device, "vram_free")},
                      {"torch_vram_total_bytes", bytes(device, "torch_vram_total")},
                      {"torch_vram_free_bytes", bytes(device, "torch_vram_free")},
                      {"ram_total_bytes", bytes(system, "ram_total")},
                      {"ram_free_bytes", bytes(system, "ram_free")}}}};
}

void ComfySession::run(const RunRequest& request) {
  const auto started = Clock::now();
  requests_.begin_run(request.id);
  int completed = 0;
  std::string status = "succeeded";
  bool backend_down = false;
  try {
    const std::vector<RunItem> items = batch_items(request);
    events_.emit(to_json(RunStartedEvent{request.id, static_cast<int>(items.size()), memory_report()}));
    completed = run_items(request, items);
  } catch (const Error& e) {
    status = e.code() == ErrorCode::kCanceled ? "canceled" : "failed";
    backend_down = e.code() == ErrorCode::kUnavailable;
    report_error(e, request.id, completed);
  } catch (const std::exception& e) {
    status = "failed";
    report_error(Error(ErrorCode::kInternal, e.what()), request.id, completed);
  }
  events_.emit(to_json(RunFinishedEvent{request.id, status, completed, elapsed_ms(started),
                                        backend_down ? json(nullptr) : memory_report()}));
  if (!backend_down) read_server_memory();  // for the next report, after this run's answer
}

int ComfySession::run_items(const RunRequest& request, const std::vector<RunItem>& items) {
  const std::function<bool()> canceled = [this, &request] { return requests_.cancel_requested(request.id); };
  BackendCalls calls(backend_, options_.outage_ms, kRetryMs, canceled);
  const auto reached = [&](auto call) {  // one call that is not retried: a failure is an outage
    try {
      return call();
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kUnavailable) throw;
      throw backends::backend_unavailable(backend_, e.what());
    }
  };
  const std::string output_dir = request.output_dir;
  const std::string temp_dir =
      request.temp_dir.empty() ? (std::filesystem::path(output_dir) / "temp").string() : request.temp_dir;
  std::filesystem::create_directories(output_dir);

  const json& definitions = calls([&]() -> const json& { return object_info(); });
  const std::vector<InputFile> files = input_files(request.graph, definitions, options_.input_dir);
  const json graph = files.empty() ? request.graph
                                   : calls([&] { return upload_inputs(request.graph, files, options_.input_dir, client_); });
  json extra_data = nullptr;
  if (request.extra_pnginfo.is_object()) extra_data = {{"extra_pnginfo", request.extra_pnginfo}};

  PromptFollower follower(client_, calls, events_, canceled);
  int completed = 0;
  for (const RunItem& item : items) {
    if (canceled()) throw Error(ErrorCode::kCanceled, "canceled before item " + std::to_string(item.index));
    const auto item_started = Clock::now();
    const uint64_t seed = item.seed.value_or(0);
    events_.emit(to_json(ItemStartedEvent{request.id, item.index, seed}));
    PromptItem prompt{request.id, item.index, seed, graph_for_item(graph, item), "", output_dir, temp_dir,
                      request.previews};
    if (!socket_ || !socket_->is_open()) {
      try {  // without the socket the prompt is followed through /history
        socket_ = std::make_unique<backends::ComfySocket>(options_.url, client_.websocket_target(client_id_),
                                                          client_.auth_header(), options_.timeout_ms);
      } catch (const Error&) {
        socket_.reset();
      }
    }
    const backends::PromptSubmission submission =
        reached([&] { return client_.submit(prompt.graph, client_id_, extra_data); });
    if (!submission.accepted) throw backends::prompt_refusal(submission.error, submission.node_errors, backend_);
    prompt.prompt_id = submission.prompt_id;
    follower.follow(prompt, socket_);
    ++completed;
    events_.emit(to_json(ItemFinishedEvent{request.id, item.index, seed, elapsed_ms(item_started)}));
  }
  return completed;
}

void ComfySession::report_error(const Error& error, const std::string& run_id, std::optional<int> item_index) {
  events_.emit(to_json(ErrorEvent{run_id, item_index, std::string(error.code_name()), error.what(), error.details()}));
}

}  // namespace df::runner

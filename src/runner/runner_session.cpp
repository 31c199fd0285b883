// RunnerSession: validates and executes graphs per batch item and turns everything into events.
#include "runner/runner_session.h"

#include <chrono>
#include <filesystem>
#include <new>
#include <set>

#include <c10/util/Exception.h>

#include "core/base64.h"
#include "core/error.h"
#include "engine/checkpoint_bundle.h"
#include "graph/graph_topology.h"
#include "nodes/packs/node_packs.h"
#include "graph/validate.h"
#include "nodes/model_folders.h"
#include "graph/workflow.h"
#include "runner/batch_items.h"
#include "runner/protocol.h"
#include "runner/runner_memory.h"

namespace df::runner {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

int64_t elapsed_ms(Clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
}

// Counts the sampler nodes among `nodes`, for the aggregate progress of an item.
int count_samplers(const graph::Workflow& workflow, const std::set<std::string>& nodes) {
  int samplers = 0;
  for (const auto& id : nodes) {
    const graph::Node* node = workflow.find(id);
    if (node && (node->class_type == "KSampler" || node->class_type == "KSamplerAdvanced")) ++samplers;
  }
  return samplers;
}

// Forwards executor callbacks as protocol events for one item.
class ItemObserver : public graph::ExecutionObserver {
 public:
  ItemObserver(EventWriter& events, const graph::Workflow& workflow, std::string run_id, int index,
               int samplers)
      : events_(events), workflow_(workflow), run_id_(std::move(run_id)), index_(index),
        samplers_(std::max(samplers, 1)) {}

  void on_node_cached(const std::vector<std::string>& node_ids) override {
    if (node_ids.empty()) return;
    events_.emit(CachedEvent{run_id_, index_, node_ids});
  }
  void on_node_executing(const std::string& node_id) override {
    if (!last_sampler_.empty() && last_sampler_ != node_id) {
      ++finished_samplers_;
      last_sampler_.clear();
    }
    const graph::Node* node = workflow_.find(node_id);
    current_class_ = node ? node->class_type : "";
    events_.emit(ExecutingEvent{run_id_, index_, node_id, current_class_});
  }
  void on_progress(const std::string& node_id, int64_t value, int64_t max) override {
    last_sampler_ = node_id;
    const double fraction =
        (finished_samplers_ + (max > 0 ? double(value) / double(max) : 0.0)) / samplers_;
    events_.emit(ProgressEvent{run_id_, index_, node_id, value, max, std::min(fraction, 1.0)});
  }
  const std::string& current_class() const { return current_class_; }

 private:
  EventWriter& events_;
  const graph::Workflow& workflow_;
  std::string run_id_;
  int index_;
  int samplers_;
  int finished_samplers_ = 0;
  std::string last_sampler_;
  std::string current_class_;
};

// The checkpoint store's options: the runner's folders, placement and model budgets.
nodes::CheckpointStoreOptions store_options(const RunnerOptions& options) {
  const c10::Device device =
      engine::resolve_placement(options.device, "float32", engine::Family::kSD1).device;
  return {options.models_dir, "", options.device, options.dtype, options.clip_vocab_dir,
          model_budgets(options.ram_budget_mb, options.vram_budget_mb, device)};
}

// What an exception that is not an Error means for a job: running out of memory on the device or
// the host (libtorch's CPU allocator reports a refused allocation as a plain c10::Error) has its
// own code; anything else is internal.
Error describe_exception(const std::exception& e) {
  if (const auto* oom = dynamic_cast<const c10::OutOfMemoryError*>(&e)) {
    return Error(ErrorCode::kOutOfMemory, "out of memory on the device",
                 {{"reason", oom->what_without_backtrace()}});
  }
  if (dynamic_cast<const std::bad_alloc*>(&e)) return Error(ErrorCode::kOutOfMemory, "out of host memory");
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) {
    const std::string what = c10_error->what_without_backtrace();
    if (what.find("DefaultCPUAllocator: can't allocate memory") != std::string::npos) {
      return Error(ErrorCode::kOutOfMemory, "out of host memory", {{"reason", what}});
    }
    return Error(ErrorCode::kInternal, what);
  }
  return Error(ErrorCode::kInternal, e.what());
}

}  // namespace

RunnerSession::RunnerSession(const RunnerOptions& options, EventWriter& events, RequestReader& requests)
    : options_(options),
      events_(events),
      requests_(requests),
      store_(store_options(options)),
      schemas_(nodes::builtin_node_schemas()),
      implementations_(nodes::builtin_node_impls({store_, env_})),
      executor_(implementations_) {
  env_.input_dir = options.input_dir;
}

void RunnerSession::serve() {
  while (auto message = requests_.next()) {
    const bool is_run = (*message)["type"] == "run";
    std::optional<Request> request;
    try {
      request = parse_request(*message);
    } catch (const Error& e) {
      answer_malformed(*message, e);
    }
    if (request && std::holds_alternative<ShutdownRequest>(*request)) break;
    if (request) handle(*request);
    if (requests_.shutdown_requested() && !is_run) break;
  }
  events_.emit(ByeEvent{});
}

void RunnerSession::handle(const Request& request) {
  try {
    std::visit(
        [this](const auto& message) {
          using T = std::decay_t<decltype(message)>;
          if constexpr (std::is_same_v<T, HelloRequest>) hello(message);
          if constexpr (std::is_same_v<T, RunRequest>) run(message);
          if constexpr (std::is_same_v<T, FreeRequest>) free();
          // Cancels take effect in the request reader as they arrive; shutdown ends serve().
        },
        request);
  } catch (const std::exception& e) {
    report_error(e);
  }
}

void RunnerSession::answer_malformed(const json& message, const Error& error) {
  const json id = message.value("id", json());
  if (message["type"] != "run" || !id.is_string()) {
    report_error(error);
    return;
  }
  const auto started = Clock::now();
  report_error(error, id.get<std::string>(), 0);
  finish_run(id.get<std::string>(), "failed", 0, started);
}

void RunnerSession::hello(const HelloRequest& request) {
  check_hello_request(request);
  events_.emit(HelloEvent{kProtocolVersion, "dreamforge-runner", "0.1.0", capabilities()});
}

RunnerCapabilities RunnerSession::capabilities() const {
  RunnerCapabilities caps;
  caps.kind = "native";
  for (const auto& schema : schemas_.schemas()) caps.nodes.push_back(schema.name);
  const graph::SchemaContext context = schema_context();
  caps.object_info = graph::object_info(schemas_, context);
  caps.model_files.insert(context.model_files.begin(), context.model_files.end());
  caps.model_files["checkpoints"] = context.checkpoints;
  caps.samplers = nodes::supported_samplers();
  caps.schedulers = nodes::supported_schedulers();
  caps.formats = {"png", "jpeg", "webp"};
  caps.devices = {"cpu"};
  if (at::hasCUDA()) caps.devices.push_back("cuda");
  caps.device = options_.device != "auto" ? options_.device : at::hasCUDA() ? "cuda" : "cpu";
  caps.dtype = options_.dtype;
  caps.host_budget_bytes = store_.cache().limits().host_bytes;
  caps.device_budget_bytes = store_.cache().limits().device_bytes;
  return caps;
}

void RunnerSession::free() {
  executor_.clear();
  store_.clear();
  give_back_memory(store_.cache().device());
  events_.emit(FreedEvent{memory_report(store_.cache())});
}

graph::SchemaContext RunnerSession::schema_context() const {
  graph::SchemaContext context{store_.list(), nodes::list_input_images(env_.input_dir),
                               nodes::supported_samplers(), nodes::supported_schedulers()};
  for (const auto& kind : nodes::model_folder_kinds()) {
    if (kind.name != "checkpoints") {
      context.model_files[kind.name] = nodes::model_combo_names(store_.models_root(), kind.name);
    }
  }
  return context;
}

void RunnerSession::run(const RunRequest& request) {
  const auto started = Clock::now();
  requests_.begin_run(request.id);
  int completed = 0;
  std::string status = "succeeded";
  try {
    env_.output_dir = request.output_dir;
    env_.temp_dir = !request.temp_dir.empty()
                        ? request.temp_dir
                        : (std::filesystem::path(env_.output_dir) / "temp").string();
    env_.format = image_format_from_name(request.format);
    env_.quality = request.quality;
    if (env_.quality < 1 || env_.quality > 100) {
      throw Error(ErrorCode::kInvalidArgument, "quality must be between 1 and 100");
    }
    const std::vector<RunItem> items = batch_items(request);
    previews_ = request.previews;
    reset_peak_memory(store_.cache().device());
    events_.emit(RunStartedEvent{request.id, static_cast<int>(items.size()),
                                 memory_report(store_.cache())});
    completed = run_items(request, items);
  } catch (const std::exception& e) {
    const auto* error = dynamic_cast<const Error*>(&e);
    status = error && error->code() == ErrorCode::kCanceled ? "canceled" : "failed";
    report_error(e, request.id, completed);
  }
  finish_run(request.id, status, completed, started);
}

void RunnerSession::finish_run(const std::string& run_id, const std::string& status, int completed,
                               Clock::time_point started) {
  give_back_memory(store_.cache().device());
  events_.emit(RunFinishedEvent{run_id, status, completed, elapsed_ms(started),
                                memory_report(store_.cache())});
}

int RunnerSession::run_items(const RunRequest& run, const std::vector<RunItem>& items) {
  const std::string& run_id = run.id;
  graph::Workflow first = graph::parse_workflow(graph_for_item(run.graph, items[0]));
  graph::ValidationResult validation = graph::validate_workflow(
      first, schemas_, schema_context(), {}, nodes::builtin_validation_hooks(env_));
  if (!validation.ok) {
    throw Error(ErrorCode::kInvalidArgument, "the graph failed validation: " +
                                                 validation.error.value("message", std::string()),
                {{"error", validation.error}, {"node_errors", validation.node_errors}});
  }
  std::filesystem::create_directories(env_.output_dir);

  int completed = 0;
  for (const RunItem& item : items) {
    const int index = item.index;
    const auto item_started = Clock::now();
    graph::Workflow workflow = graph::parse_workflow(graph_for_item(run.graph, item));
    const uint64_t seed = item.seed.value_or(0);
    events_.emit(ItemStartedEvent{run_id, index, seed});

    ItemObserver observer(events_, workflow, run_id, index,
                          count_samplers(workflow, graph::upstream_closure(workflow, validation.outputs_to_execute)));
    env_.on_stage = [&](const std::string& node_id, const std::string& stage) {
      events_.emit(StageEvent{run_id, index, node_id, observer.current_class(), stage});
    };
    env_.on_preview = nullptr;  // a run that failed may have left its hook behind
    if (previews_) {
      env_.on_preview = [&](const std::string& node_id, const std::vector<uint8_t>& jpeg) {
        events_.emit(PreviewEvent{run_id, index, node_id, "jpeg", encode_base64(jpeg)});
      };
    }
    env_.on_streamed_image = [&](const nodes::StreamedImage& image) {
      events_.emit(StreamedImageEvent{run_id, index, image.node_id, image.index, image.count,
                                      image.width, image.height, "png", encode_base64(image.png)});
    };
    env_.on_artifact = [&](const nodes::ArtifactRecord& a) {
      ArtifactEvent artifact;
      artifact.id = run_id;
      artifact.item_index = index;
      artifact.node = a.node_id;
      artifact.path = a.path;
      artifact.filename = a.filename;
      artifact.subfolder = a.subfolder;
      artifact.kind = a.kind;
      artifact.format = file_extension(a.format);
      artifact.content_type = content_type(a.format);
      artifact.width = a.width;
      artifact.height = a.height;
      artifact.seed = a.seed;
      artifact.bytes = a.bytes;
      artifact.sha256 = a.sha256;
      events_.emit(artifact);
    };
    graph::RunOptions run_options;
    run_options.is_canceled = [this, &run_id] { return requests_.cancel_requested(run_id); };
    run_options.extra_pnginfo = run.extra_pnginfo;
    run_options.describe_failure = describe_exception;
    executor_.run(workflow, validation.outputs_to_execute, observer, run_options);
    ++completed;
    events_.emit(ItemFinishedEvent{run_id, index, seed, elapsed_ms(item_started)});
  }
  env_.on_stage = nullptr;
  env_.on_artifact = nullptr;
  env_.on_preview = nullptr;
  env_.on_streamed_image = nullptr;
  return completed;
}

void RunnerSession::report_error(const std::exception& e, const std::string& run_id,
                                 std::optional<int> item_index) {
  const auto* error = dynamic_cast<const Error*>(&e);
  const Error described = error ? *error : describe_exception(e);
  events_.emit(ErrorEvent{run_id, item_index, std::string(described.code_name()), described.what(),
                          described.details()});
}

}  // namespace df::runner

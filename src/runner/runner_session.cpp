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
#include "runner/protocol.h"
#include "runner/runner_memory.h"

namespace df::runner {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

int64_t elapsed_ms(Clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
}

const json& require_field(const json& request, const char* name, json::value_t type, const char* what) {
  auto it = request.find(name);
  if (it == request.end() || it->type() != type) {
    throw Error(ErrorCode::kProtocol, std::string("run needs '") + name + "' (" + what + ")");
  }
  return *it;
}

// The batch: [{"index", "seed"}], or one item that keeps the graph's own seeds.
json normalized_items(const json& request) {
  if (!request.contains("items")) return json::array({json{{"index", 0}}});
  const json& items = request["items"];
  if (!items.is_array() || items.empty() || items.size() > 100) {
    throw Error(ErrorCode::kProtocol, "'items' must be a list of 1 to 100 items");
  }
  for (const auto& item : items) {
    if (!item.is_object() || !item.value("index", json()).is_number_integer() ||
        (item.contains("seed") && !item["seed"].is_number_unsigned() &&
         !(item["seed"].is_number_integer() && item["seed"].get<int64_t>() >= 0))) {
      throw Error(ErrorCode::kProtocol, "each item needs an integer 'index' and a non-negative integer 'seed'");
    }
  }
  return items;
}

// A copy of the graph whose sampler seeds are the item's seed.
json graph_for_item(const json& graph, const json& item) {
  json copy = graph;
  if (!item.contains("seed")) return copy;
  for (auto& [id, node] : copy.items()) {
    if (!node.is_object() || !node.contains("inputs") || !node["inputs"].is_object()) continue;
    const std::string type = node.value("class_type", "");
    const char* input = type == "KSampler" ? "seed" : type == "KSamplerAdvanced" ? "noise_seed" : nullptr;
    if (input && !node["inputs"].value(input, json()).is_array()) node["inputs"][input] = item["seed"];
  }
  return copy;
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
    events_.emit({{"type", "cached"}, {"id", run_id_}, {"item_index", index_}, {"nodes", node_ids}});
  }
  void on_node_executing(const std::string& node_id) override {
    if (!last_sampler_.empty() && last_sampler_ != node_id) {
      ++finished_samplers_;
      last_sampler_.clear();
    }
    const graph::Node* node = workflow_.find(node_id);
    current_class_ = node ? node->class_type : "";
    events_.emit({{"type", "executing"}, {"id", run_id_}, {"item_index", index_}, {"node", node_id},
                  {"class_type", current_class_}});
  }
  void on_progress(const std::string& node_id, int64_t value, int64_t max) override {
    last_sampler_ = node_id;
    const double fraction =
        (finished_samplers_ + (max > 0 ? double(value) / double(max) : 0.0)) / samplers_;
    events_.emit({{"type", "progress"}, {"id", run_id_}, {"item_index", index_}, {"node", node_id},
                  {"step", value}, {"total", max}, {"progress", std::min(fraction, 1.0)}});
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
  while (auto request = requests_.next()) {
    const std::string type = (*request)["type"].get<std::string>();
    if (type == "shutdown") break;
    handle(*request);
    if (requests_.shutdown_requested() && type != "run") break;
  }
  events_.emit({{"type", "bye"}});
}

void RunnerSession::handle(const json& request) {
  const std::string type = request["type"].get<std::string>();
  try {
    if (type == "hello") {
      hello();
    } else if (type == "run") {
      run(request);
    } else if (type == "free") {
      free();
    } else {
      throw Error(ErrorCode::kProtocol, "unknown request type '" + type + "'");
    }
  } catch (const std::exception& e) {
    report_error(e, json::object());
  }
}

void RunnerSession::hello() {
  json devices = json::array({"cpu"});
  if (at::hasCUDA()) devices.push_back("cuda");
  json nodes = json::array();
  for (const auto& schema : schemas_.schemas()) nodes.push_back(schema.name);
  events_.emit({{"type", "hello"},
                {"protocol", kProtocolVersion},
                {"runner", "dreamforge-runner"},
                {"version", "0.1.0"},
                {"capabilities",
                 {{"nodes", nodes},
                  {"samplers", nodes::supported_samplers()},
                  {"schedulers", nodes::supported_schedulers()},
                  {"formats", {"png", "jpeg", "webp"}},
                  {"devices", devices},
                  {"device", options_.device != "auto" ? options_.device
                             : at::hasCUDA()             ? "cuda"
                                                         : "cpu"},
                  {"dtype", options_.dtype},
                  {"budgets",
                   {{"host_bytes", store_.cache().limits().host_bytes},
                    {"device_bytes", store_.cache().limits().device_bytes}}}}}});
}

void RunnerSession::free() {
  executor_.clear();
  store_.clear();
  give_back_memory(store_.cache().device());
  events_.emit({{"type", "freed"}, {"memory", memory_report(store_.cache())}});
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

void RunnerSession::run(const json& request) {
  const auto started = Clock::now();
  const std::string run_id = require_field(request, "id", json::value_t::string, "a string").get<std::string>();
  requests_.begin_run(run_id);
  int completed = 0;
  std::string status = "succeeded";
  try {
    const json& graph = require_field(request, "graph", json::value_t::object, "an API-format graph");
    env_.output_dir = require_field(request, "output_dir", json::value_t::string, "a folder").get<std::string>();
    env_.temp_dir = request.contains("temp_dir")
                        ? require_field(request, "temp_dir", json::value_t::string, "a folder").get<std::string>()
                        : (std::filesystem::path(env_.output_dir) / "temp").string();
    env_.format = image_format_from_name(request.value("format", "png"));
    env_.quality = request.value("quality", 95);
    if (env_.quality < 1 || env_.quality > 100) {
      throw Error(ErrorCode::kInvalidArgument, "quality must be between 1 and 100");
    }
    const json items = normalized_items(request);
    const json extra = request.value("extra_pnginfo", json());
    previews_ = request.value("previews", false);
    reset_peak_memory(store_.cache().device());
    events_.emit({{"type", "run_started"}, {"id", run_id}, {"items", items.size()},
                  {"memory", memory_report(store_.cache())}});
    completed = run_items(run_id, graph, items, extra);
  } catch (const std::exception& e) {
    const auto* error = dynamic_cast<const Error*>(&e);
    status = error && error->code() == ErrorCode::kCanceled ? "canceled" : "failed";
    report_error(e, {{"id", run_id}, {"item_index", completed}});
  }
  give_back_memory(store_.cache().device());
  events_.emit({{"type", "run_finished"}, {"id", run_id}, {"status", status},
                {"items_completed", completed}, {"duration_ms", elapsed_ms(started)},
                {"memory", memory_report(store_.cache())}});
}

int RunnerSession::run_items(const std::string& run_id, const json& graph, const json& items,
                             const json& extra_pnginfo) {
  graph::Workflow first = graph::parse_workflow(graph_for_item(graph, items[0]));
  graph::ValidationResult validation = graph::validate_workflow(
      first, schemas_, schema_context(), {}, nodes::builtin_validation_hooks(env_));
  if (!validation.ok) {
    throw Error(ErrorCode::kInvalidArgument, "the graph failed validation: " +
                                                 validation.error.value("message", std::string()),
                {{"error", validation.error}, {"node_errors", validation.node_errors}});
  }
  std::filesystem::create_directories(env_.output_dir);

  int completed = 0;
  for (const auto& item : items) {
    const int index = item["index"].get<int>();
    const auto item_started = Clock::now();
    const json item_graph = graph_for_item(graph, item);
    graph::Workflow workflow = graph::parse_workflow(item_graph);
    const uint64_t seed = item.contains("seed") ? item["seed"].get<uint64_t>() : 0;
    events_.emit({{"type", "item_started"}, {"id", run_id}, {"item_index", index}, {"seed", seed}});

    ItemObserver observer(events_, workflow, run_id, index,
                          count_samplers(workflow, graph::upstream_closure(workflow, validation.outputs_to_execute)));
    env_.on_stage = [&](const std::string& node_id, const std::string& stage) {
      events_.emit({{"type", "stage"}, {"id", run_id}, {"item_index", index}, {"node", node_id},
                    {"class_type", observer.current_class()}, {"stage", stage}});
    };
    env_.on_preview = nullptr;  // a run that failed may have left its hook behind
    if (previews_) {
      env_.on_preview = [&](const std::string& node_id, const std::vector<uint8_t>& jpeg) {
        events_.emit({{"type", "preview"}, {"id", run_id}, {"item_index", index}, {"node", node_id},
                      {"format", "jpeg"}, {"data", encode_base64(jpeg)}});
      };
    }
    env_.on_streamed_image = [&](const nodes::StreamedImage& image) {
      events_.emit({{"type", "streamed_image"}, {"id", run_id}, {"item_index", index},
                    {"node", image.node_id}, {"index", image.index}, {"count", image.count},
                    {"width", image.width}, {"height", image.height}, {"format", "png"},
                    {"data", encode_base64(image.png)}});
    };
    env_.on_artifact = [&](const nodes::ArtifactRecord& a) {
      events_.emit({{"type", "artifact"}, {"id", run_id}, {"item_index", index}, {"node", a.node_id},
                    {"path", a.path}, {"filename", a.filename}, {"subfolder", a.subfolder},
                    {"kind", a.kind}, {"format", file_extension(a.format)},
                    {"content_type", content_type(a.format)}, {"width", a.width},
                    {"height", a.height}, {"seed", a.seed}, {"bytes", a.bytes}, {"sha256", a.sha256}});
    };
    graph::RunOptions run_options;
    run_options.is_canceled = [this, &run_id] { return requests_.cancel_requested(run_id); };
    run_options.extra_pnginfo = extra_pnginfo;
    run_options.describe_failure = describe_exception;
    executor_.run(workflow, validation.outputs_to_execute, observer, run_options);
    ++completed;
    events_.emit({{"type", "item_finished"}, {"id", run_id}, {"item_index", index}, {"seed", seed},
                  {"duration_ms", elapsed_ms(item_started)}});
  }
  env_.on_stage = nullptr;
  env_.on_artifact = nullptr;
  env_.on_preview = nullptr;
  env_.on_streamed_image = nullptr;
  return completed;
}

void RunnerSession::report_error(const std::exception& e, const json& context) {
  json event = {{"type", "error"}};
  for (const auto& [key, value] : context.items()) event[key] = value;
  const auto* error = dynamic_cast<const Error*>(&e);
  const Error described = error ? *error : describe_exception(e);
  event["code"] = described.code_name();
  event["message"] = described.what();
  event["details"] = described.details();
  events_.emit(event);
}

}  // namespace df::runner

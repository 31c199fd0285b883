// Runs validated workflows node by node, reusing the outputs of unchanged nodes between runs.
#include "graph/executor.h"

#include <algorithm>
#include <set>

#include "core/error.h"
#include "graph/graph_topology.h"

namespace df::graph {
namespace {

using nlohmann::json;

Error node_error(ErrorCode code, const std::string& message, const json& details,
                 const Node& node) {
  json merged = details.is_object() ? details : json{{"cause", details}};
  merged["node_id"] = node.id;
  merged["node_type"] = node.class_type;
  return Error(code, message, std::move(merged));
}

// Checks that every link among `needed` points at an existing node and that they form no cycle.
// (Malformed links are refused by validation where the schema declares the input; elsewhere they
// are values nobody reads, as in ComfyUI.)
void check_links(const Workflow& workflow, const std::set<std::string>& needed) {
  for (const auto& id : needed) {
    for (const auto& [name, input] : workflow.find(id)->inputs) {
      if (input.kind == InputKind::kLink && workflow.find(input.link.node_id) == nullptr) {
        throw Error(ErrorCode::kInvalidArgument,
                    "Node '" + id + "': input '" + name + "' is not a link to an existing node",
                    {{"node_id", id}, {"input_name", name}});
      }
    }
  }
  const auto cycles = dependency_cycles(workflow, needed);
  if (!cycles.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "The workflow has a dependency cycle",
                {{"cycle_nodes", cycles.front()}});
  }
}

// Appends `id` after everything it links to (depth first, sources in input-name order).
void append_in_dependency_order(const Workflow& workflow, const std::string& id,
                                std::set<std::string>& placed, std::vector<std::string>& order) {
  if (!placed.insert(id).second) return;
  for (const auto& [name, input] : workflow.find(id)->inputs) {
    if (input.kind == InputKind::kLink) {
      append_in_dependency_order(workflow, input.link.node_id, placed, order);
    }
  }
  order.push_back(id);
}

// The nodes the outputs need that are not `available` yet.
std::set<std::string> nodes_to_run(const Workflow& workflow,
                                   const std::vector<std::string>& outputs,
                                   const std::map<std::string, std::vector<Value>>& available) {
  std::set<std::string> to_run;
  std::vector<std::string> pending(outputs.begin(), outputs.end());
  while (!pending.empty()) {
    const std::string id = std::move(pending.back());
    pending.pop_back();
    if (available.contains(id) || !to_run.insert(id).second) continue;
    for (const auto& [name, input] : workflow.find(id)->inputs) {
      if (input.kind == InputKind::kLink) pending.push_back(input.link.node_id);
    }
  }
  return to_run;
}

// The nodes of a run and which of them can run now.
class Schedule {
 public:
  Schedule(const Workflow& workflow, const std::set<std::string>& to_run) {
    for (const auto& id : to_run) {
      for (const auto& [name, input] : workflow.find(id)->inputs) {
        if (input.kind == InputKind::kLink && to_run.contains(input.link.node_id)) {
          waiting_on_[id].insert(input.link.node_id);
          consumers_[input.link.node_id].insert(id);
        }
      }
      if (!waiting_on_.contains(id)) ready_.insert(id);
    }
  }

  bool done() const { return ready_.empty(); }

  // Takes the next node to run. Like ComfyUI's ux_friendly_pick_node: an output first, else a
  // node that feeds an output directly, else one two links away, else the first ready node.
  std::string pick(const std::set<std::string>& outputs) {
    for (int hops = 0; hops <= 2; ++hops) {
      for (const auto& id : ready_) {
        if (reaches_output(id, hops, outputs)) return take(id);
      }
    }
    return take(*ready_.begin());
  }

  // Marks `id` done; its consumers become ready once nothing else holds them.
  void finish(const std::string& id) {
    for (const auto& consumer : consumers_[id]) {
      auto& sources = waiting_on_[consumer];
      sources.erase(id);
      if (sources.empty()) ready_.insert(consumer);
    }
  }

 private:
  std::string take(std::string id) {
    ready_.erase(id);
    return id;
  }

  bool reaches_output(const std::string& id, int hops, const std::set<std::string>& outputs) {
    std::set<std::string> frontier = {id};
    for (int hop = 0; hop < hops; ++hop) {
      std::set<std::string> next;
      for (const auto& node : frontier) {
        const auto& downstream = consumers_[node];
        next.insert(downstream.begin(), downstream.end());
      }
      frontier = std::move(next);
    }
    return std::any_of(frontier.begin(), frontier.end(),
                       [&](const std::string& node) { return outputs.contains(node); });
  }

  std::set<std::string> ready_;
  std::map<std::string, std::set<std::string>> waiting_on_;  // node -> sources still to run
  std::map<std::string, std::set<std::string>> consumers_;   // node -> nodes that wait on it
};

}  // namespace

struct Executor::Plan {
  std::vector<std::string> order;                 // every needed node, dependencies first
  std::map<std::string, std::string> signatures;  // node id -> signature text
};

Executor::Executor(const NodeImplRegistry& implementations) : implementations_(implementations) {}

void Executor::clear() {
  cache_.clear();
  signature_ids_.clear();
  instances_.clear();
}

NodeImpl& Executor::implementation(const Node& node) {
  auto& instance = instances_[{node.id, node.class_type}];
  if (!instance) instance = implementations_.create(node.class_type);
  return *instance;
}

NodeInputs Executor::inputs_of(const Node& node,
                               const std::map<std::string, std::vector<Value>>& results,
                               bool include_links) const {
  NodeInputs inputs(node.id, node.class_type);
  for (const auto& [name, input] : node.inputs) {
    if (input.kind == InputKind::kConstant) {
      inputs.set_constant(name, input.value);
    } else if (include_links && input.kind == InputKind::kLink) {  // validation refused others
      const auto& source_outputs = results.at(input.link.node_id);
      if (input.link.slot >= static_cast<int64_t>(source_outputs.size())) {
        throw Error(ErrorCode::kInternal,
                    "Input '" + name + "' links to output " + std::to_string(input.link.slot) +
                        " of node '" + input.link.node_id + "', which produced " +
                        std::to_string(source_outputs.size()) + " outputs");
      }
      inputs.set_linked(name, source_outputs[static_cast<size_t>(input.link.slot)]);
    }
  }
  return inputs;
}

std::string Executor::signature_of(const Node& node,
                                   const std::map<std::string, std::string>& signatures) {
  const NodeImpl& impl = implementation(node);
  json fingerprint;
  try {
    if (auto text = impl.fingerprint(inputs_of(node, {}, false))) {
      fingerprint = *text;
    }
  } catch (const std::exception&) {
    // Like ComfyUI's NaN from a failing IS_CHANGED: a signature no other run can match.
    fingerprint = {{"unrepeatable", next_signature_id_++}};
  }
  json inputs = json::object();
  for (const auto& [name, input] : node.inputs) {
    if (input.kind != InputKind::kLink) {  // a malformed link is a value nobody reads
      inputs[name] = {"value", input.value};
    } else {
      const uint64_t source = signature_ids_.at(signatures.at(input.link.node_id));
      inputs[name] = {"link", source, input.link.slot};
    }
  }
  std::string text = json::array({node.class_type, fingerprint, inputs}).dump();
  if (!signature_ids_.contains(text)) signature_ids_[text] = next_signature_id_++;
  return text;
}

Executor::Plan Executor::make_plan(const Workflow& workflow,
                                   const std::vector<std::string>& outputs) {
  for (const auto& id : outputs) {
    if (workflow.find(id) == nullptr) {
      throw Error(ErrorCode::kInvalidArgument, "Output node '" + id + "' is not in the workflow",
                  {{"node_id", id}});
    }
  }
  const std::set<std::string> needed = upstream_closure(workflow, outputs);
  check_links(workflow, needed);

  Plan plan;
  std::set<std::string> placed;
  for (const auto& id : needed) append_in_dependency_order(workflow, id, placed, plan.order);
  for (const auto& id : plan.order) {
    const Node& node = *workflow.find(id);
    try {
      plan.signatures[id] = signature_of(node, plan.signatures);
    } catch (const Error& e) {
      throw node_error(e.code(), e.what(), e.details(), node);
    }
  }
  return plan;
}

void Executor::evict_all_but(const Workflow& workflow,
                             const std::map<std::string, std::string>& signatures) {
  std::set<std::string> current;
  for (const auto& [id, text] : signatures) current.insert(text);
  std::erase_if(cache_, [&](const auto& entry) { return !current.contains(entry.first); });
  std::erase_if(signature_ids_, [&](const auto& entry) { return !current.contains(entry.first); });
  std::erase_if(instances_, [&](const auto& entry) {
    const auto& [id, class_type] = entry.first;
    return !signatures.contains(id) || workflow.find(id)->class_type != class_type;
  });
}

RunResult Executor::run(const Workflow& workflow, const std::vector<std::string>& outputs,
                        ExecutionObserver& observer, const RunOptions& options) {
  observer.on_execution_start();
  const Plan plan = make_plan(workflow, outputs);
  evict_all_but(workflow, plan.signatures);

  // Reuse what the cache holds, then walk up from the outputs to what must run.
  const std::set<std::string> requested(outputs.begin(), outputs.end());
  RunResult result;
  std::map<std::string, std::vector<Value>> results;
  for (const auto& id : plan.order) {
    auto hit = cache_.find(plan.signatures.at(id));
    if (hit == cache_.end() || requested.contains(id)) continue;
    results[id] = hit->second;
    result.cached.push_back(id);
  }
  std::sort(result.cached.begin(), result.cached.end());
  observer.on_node_cached(result.cached);

  Schedule schedule(workflow, nodes_to_run(workflow, outputs, results));
  while (!schedule.done()) {
    const std::string id = schedule.pick(requested);
    const Node& node = *workflow.find(id);
    if (options.is_canceled && options.is_canceled()) {
      throw node_error(ErrorCode::kCanceled, "The run was canceled", json::object(), node);
    }
    observer.on_node_executing(id);
    NodeContext ctx(
        id, [&](int64_t value, int64_t max) { observer.on_progress(id, value, max); },
        options.is_canceled, workflow.source, options.extra_pnginfo);
    try {
      results[id] = implementation(node).execute(inputs_of(node, results, true), ctx);
    } catch (const Error& e) {
      throw node_error(e.code(), e.what(), e.details(), node);
    } catch (const std::exception& e) {
      const Error described = options.describe_failure ? options.describe_failure(e)
                                                       : Error(ErrorCode::kInternal, e.what());
      throw node_error(described.code(), described.what(), described.details(), node);
    }
    if (!requested.contains(id)) cache_[plan.signatures.at(id)] = results[id];
    result.executed.push_back(id);
    if (const json& ui = ctx.ui_output(); !ui.is_null() && !ui.empty()) {
      result.outputs[id] = ui;
      observer.on_node_executed(id, ui);
    }
    schedule.finish(id);
  }
  return result;
}

}  // namespace df::graph

// Runs validated workflows node by node, reusing the outputs of unchanged nodes between runs.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "graph/node_impl.h"
#include "graph/workflow.h"

namespace df::graph {

// What a run reports while it goes (ComfyUI's execution_* and progress messages).
class ExecutionObserver {
 public:
  virtual ~ExecutionObserver() = default;
  virtual void on_execution_start() {}
  // The nodes whose outputs are reused from the previous run; sent once, before any node runs.
  virtual void on_node_cached(const std::vector<std::string>& node_ids) {}
  virtual void on_node_executing(const std::string& node_id) {}
  // After a node that produced a UI result (SaveImage's {"images": [...]}).
  virtual void on_node_executed(const std::string& node_id, const nlohmann::json& ui) {}
  virtual void on_progress(const std::string& node_id, int64_t value, int64_t max) {}
};

struct RunOptions {
  std::function<bool()> is_canceled;  // checked before every node and on every progress report
  nlohmann::json extra_pnginfo;       // the hidden EXTRA_PNGINFO input
  // What a node's exception that is not an Error means (its code, message and details); unset, it
  // is internal with the exception's message. The node's id and type are added either way.
  std::function<Error(const std::exception&)> describe_failure;
};

struct RunResult {
  std::vector<std::string> executed;                 // in execution order
  std::vector<std::string> cached;                   // reused from the previous run
  nlohmann::json outputs = nlohmann::json::object();  // node id -> UI result
};

// Executes workflows for one runner; not thread-safe (one run at a time).
//
// Order: a node runs once everything it links to is available. Among the ready nodes the
// executor prefers, like ComfyUI, the requested outputs, then nodes that feed one directly, then
// nodes two links away, else the ready node with the smallest id.
//
// Cache: a node's outputs are reused when its signature equals that of a node of the previous
// run. The signature is the class_type, the implementation's fingerprint, every constant input by
// name and, for every linked input, the slot and the signature of the linked node — node ids do
// not matter, values and topology do. The requested output nodes always run again (SaveImage
// writes a new file every run); their inputs may come from the cache. Only the entries of the
// latest run are kept; those of nodes that left the prompt or changed are freed when the next run
// starts, before anything executes.
class Executor {
 public:
  explicit Executor(const NodeImplRegistry& implementations);

  // Runs the output nodes `outputs` of a validated workflow and what they depend on.
  // Throws df::Error(kCanceled) when canceled, and a node's df::Error (other exceptions become
  // kInternal) with "node_id" and "node_type" added to its details. Outputs of the nodes that
  // finished stay cached.
  RunResult run(const Workflow& workflow, const std::vector<std::string>& outputs,
                ExecutionObserver& observer, const RunOptions& options = {});

  // Frees every cached output and node instance.
  void clear();
  size_t cached_output_count() const { return cache_.size(); }

 private:
  struct Plan;

  Plan make_plan(const Workflow& workflow, const std::vector<std::string>& outputs);
  std::string signature_of(const Node& node, const std::map<std::string, std::string>& signatures);
  NodeImpl& implementation(const Node& node);
  NodeInputs inputs_of(const Node& node, const std::map<std::string, std::vector<Value>>& results,
                       bool include_links) const;
  // Drops cache entries, signatures and instances that the planned run does not use.
  void evict_all_but(const Workflow& workflow,
                     const std::map<std::string, std::string>& signatures);

  const NodeImplRegistry& implementations_;
  // (node id, class_type) -> the instance serving that node.
  std::map<std::pair<std::string, std::string>, std::unique_ptr<NodeImpl>> instances_;
  // signature text -> stable short id used inside the signatures of downstream nodes.
  std::map<std::string, uint64_t> signature_ids_;
  uint64_t next_signature_id_ = 0;
  // signature text -> the node's outputs.
  std::map<std::string, std::vector<Value>> cache_;
};

}  // namespace df::graph

// The runner's request loop: hello, run (a graph for N items), free, shutdown.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "graph/executor.h"
#include "graph/node_schema.h"
#include "nodes/builtin_nodes.h"
#include "nodes/checkpoint_store.h"
#include "runner/runner_io.h"

namespace df::runner {

struct RunnerOptions {
  std::string models_dir = "models";
  std::string input_dir = "input";
  std::string device = "auto";
  std::string dtype = "auto";
  std::string clip_vocab_dir;
  int64_t ram_budget_mb = 0;   // what loaded models may hold in host memory (0: the default)
  int64_t vram_budget_mb = 0;  // ... in device memory (0: the default)
};

class RunnerSession {
 public:
  RunnerSession(const RunnerOptions& options, EventWriter& events, RequestReader& requests);

  // Serves requests until shutdown or end of input.
  void serve();

 private:
  void handle(const nlohmann::json& request);
  void hello();
  void free();
  void run(const nlohmann::json& request);
  // Runs every item; returns the number completed. Throws on the first failing item.
  int run_items(const std::string& run_id, const nlohmann::json& graph,
                const nlohmann::json& items, const nlohmann::json& extra_pnginfo);
  void report_error(const std::exception& error, const nlohmann::json& context);
  graph::SchemaContext schema_context() const;

  RunnerOptions options_;
  EventWriter& events_;
  RequestReader& requests_;
  nodes::CheckpointStore store_;
  nodes::RunEnvironment env_;
  graph::NodeSchemaRegistry schemas_;
  graph::NodeImplRegistry implementations_;
  graph::Executor executor_;
  bool previews_ = false;  // the current run asked for latent previews after each sampler step
};

}  // namespace df::runner

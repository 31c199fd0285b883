// The seam between the graph executor and node implementations: inputs, context, registry.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "graph/value.h"

namespace df::graph {

// The inputs of one node execution: constants (widget values) and linked outputs of other nodes.
// Constants are converted on access the way ComfyUI converts them (Python's int()/float()/...).
// A linked output holding a nlohmann::json (a widget value a node produced, e.g. PrimitiveInt's)
// reads like a constant.
// Every accessor throws df::Error(kInvalidArgument) naming the node and input when the input is
// missing, of the other kind, or not convertible.
class NodeInputs {
 public:
  NodeInputs(std::string node_id, std::string class_type);

  void set_constant(std::string name, nlohmann::json value);
  void set_linked(std::string name, Value value);

  const std::string& node_id() const { return node_id_; }
  const std::string& class_type() const { return class_type_; }
  bool has(std::string_view name) const;
  bool is_linked(std::string_view name) const;

  int64_t get_int(std::string_view name) const;
  uint64_t get_uint(std::string_view name) const;  // seeds: 0 .. 2^64-1
  double get_float(std::string_view name) const;
  std::string get_string(std::string_view name) const;
  bool get_bool(std::string_view name) const;
  const nlohmann::json& constant(std::string_view name) const;  // as sent

  const Value& linked(std::string_view name) const;
  // The object behind a linked input; throws df::Error(kInternal) when it is not a T.
  template <class T>
  const T& get(std::string_view name) const {
    return linked(name).as<T>();
  }

 private:
  [[noreturn]] void fail(std::string_view name, const std::string& problem) const;
  // convert(constant(name)), with conversion errors reported as errors of this input.
  template <class Convert>
  auto converted(std::string_view name, const char* expected, Convert convert) const;

  std::string node_id_;
  std::string class_type_;
  std::map<std::string, nlohmann::json, std::less<>> constants_;
  std::map<std::string, Value, std::less<>> linked_;
};

// What a running node may use besides its inputs.
class NodeContext {
 public:
  using ProgressCallback = std::function<void(int64_t value, int64_t max)>;
  using CancelCheck = std::function<bool()>;

  NodeContext(std::string node_id, ProgressCallback progress, CancelCheck is_canceled,
              const nlohmann::json& prompt, const nlohmann::json& extra_pnginfo);

  const std::string& node_id() const { return node_id_; }
  // Reports progress of a long node (a sampler reports each step as value/max), then throws
  // df::Error(kCanceled) when the run was canceled.
  void report_progress(int64_t value, int64_t max);
  bool canceled() const;
  void throw_if_canceled() const;

  // The UI result shown by clients, e.g. SaveImage's {"images": [{filename, subfolder, type}]};
  // stays null for nodes without one.
  nlohmann::json& ui_output() { return ui_output_; }
  // The hidden inputs PROMPT (the API prompt) and EXTRA_PNGINFO (null when the client sent none).
  const nlohmann::json& prompt() const { return prompt_; }
  const nlohmann::json& extra_pnginfo() const { return extra_pnginfo_; }

 private:
  std::string node_id_;
  ProgressCallback progress_;
  CancelCheck is_canceled_;
  const nlohmann::json& prompt_;
  const nlohmann::json& extra_pnginfo_;
  nlohmann::json ui_output_;
};

// One node class's behaviour. An instance serves one node id for as long as that node stays in
// the prompts the executor runs, so it may keep state between runs.
class NodeImpl {
 public:
  virtual ~NodeImpl() = default;
  // Runs the node; returns one Value per output slot of its schema.
  virtual std::vector<Value> execute(const NodeInputs& inputs, NodeContext& ctx) = 0;
  // Like ComfyUI's IS_CHANGED: a fingerprint of outside state the outputs depend on (e.g. a
  // file's hash). It sees the constant inputs only, before anything runs; when it changes, cached
  // outputs of the node are not reused. nullopt: the outputs depend on the inputs alone.
  virtual std::optional<std::string> fingerprint(const NodeInputs& inputs) const {
    return std::nullopt;
  }
};

using NodeImplFactory = std::function<std::unique_ptr<NodeImpl>()>;

// class_type -> the factory of its implementation.
class NodeImplRegistry {
 public:
  // Throws df::Error(kInvalidArgument) when the class is already registered.
  void add(std::string class_type, NodeImplFactory factory);
  bool contains(std::string_view class_type) const;
  // Throws df::Error(kUnsupported) when the class has no implementation.
  std::unique_ptr<NodeImpl> create(std::string_view class_type) const;

 private:
  std::map<std::string, NodeImplFactory, std::less<>> factories_;
};

}  // namespace df::graph

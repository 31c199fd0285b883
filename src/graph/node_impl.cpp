// The seam between the graph executor and node implementations: inputs, context, registry.
#include "graph/node_impl.h"

#include <limits>

#include "core/error.h"
#include "graph/python_values.h"

namespace df::graph {

NodeInputs::NodeInputs(std::string node_id, std::string class_type)
    : node_id_(std::move(node_id)), class_type_(std::move(class_type)) {}

void NodeInputs::set_constant(std::string name, nlohmann::json value) {
  linked_.erase(name);
  constants_.insert_or_assign(std::move(name), std::move(value));
}

void NodeInputs::set_linked(std::string name, Value value) {
  constants_.erase(name);
  linked_.insert_or_assign(std::move(name), std::move(value));
}

bool NodeInputs::has(std::string_view name) const {
  return constants_.contains(name) || linked_.contains(name);
}

bool NodeInputs::is_linked(std::string_view name) const { return linked_.contains(name); }

void NodeInputs::fail(std::string_view name, const std::string& problem) const {
  throw Error(ErrorCode::kInvalidArgument,
              "Node '" + node_id_ + "' (" + class_type_ + "): input '" + std::string(name) + "' " +
                  problem,
              {{"node_id", node_id_}, {"input_name", name}});
}

const nlohmann::json& NodeInputs::constant(std::string_view name) const {
  if (auto it = constants_.find(name); it != constants_.end()) return it->second;
  if (auto it = linked_.find(name); it != linked_.end() && it->second.holds<nlohmann::json>()) {
    return it->second.as<nlohmann::json>();
  }
  fail(name, linked_.contains(name) ? "is linked to another node, a value was expected"
                                    : "is missing");
}

const Value& NodeInputs::linked(std::string_view name) const {
  if (auto it = linked_.find(name); it != linked_.end()) return it->second;
  fail(name, constants_.contains(name) ? "must be linked to the output of another node"
                                       : "is missing");
}

template <class Convert>
auto NodeInputs::converted(std::string_view name, const char* expected, Convert convert) const {
  const nlohmann::json& value = constant(name);
  try {
    return convert(value);
  } catch (const Error& e) {
    fail(name, std::string("is not ") + expected + ": " + e.what());
  }
}

int64_t NodeInputs::get_int(std::string_view name) const {
  const PyInt i = converted(name, "an integer", python_int);
  if (i.value < std::numeric_limits<int64_t>::min() ||
      i.value > std::numeric_limits<int64_t>::max()) {
    fail(name, "= " + i.text + " is out of range");
  }
  return static_cast<int64_t>(i.value);
}

uint64_t NodeInputs::get_uint(std::string_view name) const {
  const PyInt i = converted(name, "an integer", python_int);
  if (i.value < 0 || i.value > static_cast<__int128>(std::numeric_limits<uint64_t>::max())) {
    fail(name, "= " + i.text + " is out of range (0 to 18446744073709551615)");
  }
  return static_cast<uint64_t>(i.value);
}

double NodeInputs::get_float(std::string_view name) const {
  return converted(name, "a number", python_float);
}

std::string NodeInputs::get_string(std::string_view name) const {
  return python_str(constant(name));
}

bool NodeInputs::get_bool(std::string_view name) const { return python_bool(constant(name)); }

NodeContext::NodeContext(std::string node_id, ProgressCallback progress, CancelCheck is_canceled,
                         const nlohmann::json& prompt, const nlohmann::json& extra_pnginfo)
    : node_id_(std::move(node_id)),
      progress_(std::move(progress)),
      is_canceled_(std::move(is_canceled)),
      prompt_(prompt),
      extra_pnginfo_(extra_pnginfo) {}

void NodeContext::report_progress(int64_t value, int64_t max) {
  if (progress_) progress_(value, max);
  throw_if_canceled();
}

bool NodeContext::canceled() const { return is_canceled_ && is_canceled_(); }

void NodeContext::throw_if_canceled() const {
  if (canceled()) {
    throw Error(ErrorCode::kCanceled, "The run was canceled", {{"node_id", node_id_}});
  }
}

void NodeImplRegistry::add(std::string class_type, NodeImplFactory factory) {
  if (contains(class_type)) {
    throw Error(ErrorCode::kInvalidArgument,
                "node class '" + class_type + "' has two implementations");
  }
  factories_.emplace(std::move(class_type), std::move(factory));
}

bool NodeImplRegistry::contains(std::string_view class_type) const {
  return factories_.contains(class_type);
}

std::unique_ptr<NodeImpl> NodeImplRegistry::create(std::string_view class_type) const {
  auto it = factories_.find(class_type);
  if (it == factories_.end()) {
    throw Error(ErrorCode::kUnsupported,
                "Node type '" + std::string(class_type) + "' is not implemented by this runner");
  }
  return it->second();
}

}  // namespace df::graph

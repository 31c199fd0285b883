// Primitive nodes: each passes its widget value on, converted like ComfyUI's, for widget inputs.
#include "nodes/builtin_nodes.h"
#include "nodes/function_node.h"

namespace df::nodes {
namespace {

using graph::NodeContext;
using graph::NodeInputs;
using graph::Value;

// Registers a primitive whose output carries `read`'s value as a nlohmann::json, the form in
// which a linked widget input reads it (see graph::NodeInputs).
template <class Read>
void add_primitive(graph::NodeImplRegistry& registry, const char* class_type, const char* type,
                   Read read) {
  add_function_node(registry, class_type, [type, read](const NodeInputs& in, NodeContext&) {
    return std::vector<Value>{Value::of(type, nlohmann::json(read(in)))};
  });
}

}  // namespace

void register_primitives_nodes(graph::NodeImplRegistry& registry, NodeResources) {
  const auto read_string = [](const NodeInputs& in) { return in.get_string("value"); };
  add_primitive(registry, "PrimitiveString", "STRING", read_string);
  add_primitive(registry, "PrimitiveStringMultiline", "STRING", read_string);
  add_primitive(registry, "PrimitiveInt", "INT",
                [](const NodeInputs& in) { return in.get_int("value"); });
  add_primitive(registry, "PrimitiveFloat", "FLOAT",
                [](const NodeInputs& in) { return in.get_float("value"); });
  add_primitive(registry, "PrimitiveBoolean", "BOOLEAN",
                [](const NodeInputs& in) { return in.get_bool("value"); });
}

}  // namespace df::nodes

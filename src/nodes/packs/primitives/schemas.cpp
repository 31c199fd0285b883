// Primitive node schemas (comfy_extras/nodes_primitive.py): one widget value passed on as an output.
#include <cstdint>
#include <limits>

#include "nodes/packs/node_packs.h"
#include "nodes/packs/schema_builders.h"

namespace df::nodes {
namespace {

using graph::NodeSchema;
using nlohmann::json;
using namespace schema;

// Python's sys.maxsize, the bound ComfyUI gives the Int and Float primitives.
constexpr int64_t kPythonMaxSize = std::numeric_limits<int64_t>::max();

// A primitive: input "value" of `type` with `options`, one output of the same type.
NodeSchema primitive(const char* name, const char* display_name, const char* type,
                     json options) {
  NodeSchema s;
  s.name = name;
  s.display_name = display_name;
  s.category = "utils/primitive";
  s.python_module = "comfy_extras.nodes_primitive";
  s.required = {typed("value", type, std::move(options))};
  set_outputs(s, {type});
  return s;
}

}  // namespace

void add_primitives_schemas(graph::NodeSchemaRegistry& registry) {
  registry.add(primitive("PrimitiveString", "String", "STRING", {{"multiline", false}}));
  registry.add(primitive("PrimitiveStringMultiline", "String (Multiline)", "STRING",
                         {{"multiline", true}}));
  registry.add(primitive("PrimitiveInt", "Int", "INT",
                         {{"min", -kPythonMaxSize},
                          {"max", kPythonMaxSize},
                          {"control_after_generate", true}}));
  registry.add(primitive("PrimitiveFloat", "Float", "FLOAT",
                         {{"min", -kPythonMaxSize}, {"max", kPythonMaxSize}, {"step", 0.1}}));
  registry.add(primitive("PrimitiveBoolean", "Boolean", "BOOLEAN", json::object()));
}

}  // namespace df::nodes

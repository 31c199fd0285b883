// Node schemas read back from a ComfyUI GET /object_info document (a backend's node definitions).
#pragma once

#include <nlohmann/json.hpp>

#include "graph/node_schema.h"

namespace df::graph {

// The node classes of an /object_info document: [type, options] and [[choices], options] inputs,
// ComfyUI's newer ["COMBO", {"options": [...]}] combos, required/optional/hidden groups in
// input_order, the outputs and the node's flags. Combo choices stay the document's own, except an
// image upload input ({"image_upload": true} on the input folder), which takes its choices from
// SchemaContext::input_images: images uploaded to this service are what it may name. Throws
// Error(kInvalidArgument) naming the class and the field for anything malformed.
NodeSchemaRegistry schemas_from_object_info(const nlohmann::json& object_info);

}  // namespace df::graph

// Conditioning node schemas (prompt encoding, combining and shaping conditionings).
#include "nodes/packs/node_packs.h"
#include "nodes/packs/schema_builders.h"

namespace df::nodes {
namespace {

using graph::NodeSchema;
using namespace schema;

NodeSchema clip_text_encode() {
  NodeSchema s;
  s.name = "CLIPTextEncode";
  s.display_name = "CLIP Text Encode (Prompt)";
  s.description =
      "Encodes a text prompt using a CLIP model into an embedding that can be used to guide the "
      "diffusion model towards generating specific images.";
  s.category = "conditioning";
  s.required = {
      typed("text", "STRING",
            {{"multiline", true},
             {"dynamicPrompts", true},
             {"tooltip", "The text to be encoded."}}),
      typed("clip", "CLIP", tooltip("The CLIP model used for encoding the text."))};
  set_outputs(s, {"CONDITIONING"});
  s.output_tooltips = {
      "A conditioning containing the embedded text used to guide the diffusion model."};
  return s;
}

}  // namespace

void add_conditioning_schemas(graph::NodeSchemaRegistry& registry) {
  registry.add(clip_text_encode());
}

}  // namespace df::nodes

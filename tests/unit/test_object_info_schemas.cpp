// Unit tests for node schemas read back from a ComfyUI /object_info document.
#include <gtest/gtest.h>

#include "graph/object_info_schemas.h"
#include "graph/validate.h"
#include "graph/workflow.h"
#include "nodes/packs/node_packs.h"
#include "test_graph_support.h"

namespace df::graph {
namespace {

using nlohmann::json;

SchemaContext sample_context() {
  SchemaContext context;
  context.checkpoints = {"sd15.safetensors", "xl/sdxl.safetensors"};
  context.input_images = {"cat.png", "dog.jpg"};
  context.samplers = nodes::supported_samplers();
  context.schedulers = nodes::supported_schedulers();
  context.model_files["vae"] = {"ae.safetensors"};
  context.model_files["loras"] = {"style.safetensors"};
  return context;
}

// A custom node pack: a loader of a custom link type and an output node that takes it.
json custom_pack() {
  return {
      {"PackLoader",
       {{"input", {{"required", {{"name", {{"a.bin", "b.bin"}, {{"tooltip", "which"}}}},
                                 {"mode", {"COMBO", {{"options", {"fast", "slow"}}}}}}}}},
        {"input_order", {{"required", {"name", "mode"}}}},
        {"output", {"PACK_THING"}},
        {"output_is_list", {false}},
        {"output_name", {"thing"}},
        {"output_node", false},
        {"category", "pack"},
        {"display_name", "Pack Loader"},
        {"description", "Loads a thing"},
        {"python_module", "custom_nodes.pack"}}},
      {"PackSink",
       {{"input", {{"required", {{"thing", {"PACK_THING"}}, {"image", {{"x.png"}, {{"image_upload", true}}}}}},
                   {"optional", {{"strength", {"FLOAT", {{"default", 1.0}, {"min", 0.0}, {"max", 2.0}}}}}},
                   {"hidden", {{"prompt", "PROMPT"}}}}},
        {"output", json::array()},
        {"output_node", true},
        {"experimental", true}}},
  };
}

json pack_graph(const std::string& mode, const std::string& image) {
  return {{"1", {{"class_type", "PackLoader"}, {"inputs", {{"name", "b.bin"}, {"mode", mode}}}}},
          {"2", {{"class_type", "PackSink"},
                 {"inputs", {{"thing", {"1", 0}}, {"image", image}, {"strength", 1.5}}}}}};
}

TEST(ObjectInfoSchemas, BuiltinObjectInfoRoundTrips) {
  const SchemaContext context = sample_context();
  const json info = object_info(nodes::builtin_node_schemas(), context);
  const NodeSchemaRegistry read = schemas_from_object_info(info);
  EXPECT_EQ(read.schemas().size(), nodes::builtin_node_schemas().schemas().size());
  EXPECT_EQ(object_info(read, context), info);
}

TEST(ObjectInfoSchemas, ImageUploadInputsOfferThisServicesUploads) {
  const NodeSchemaRegistry read =
      schemas_from_object_info(object_info(nodes::builtin_node_schemas(), sample_context()));
  const InputSpec* image = read.find("LoadImage")->find_input("image");
  ASSERT_NE(image, nullptr);
  EXPECT_EQ(image->choices_from, ComboSource::kInputImages);
  SchemaContext other = sample_context();
  other.input_images = {"uploaded.png"};
  EXPECT_EQ(read.find("LoadImage")->with_context(other).find_input("image")->choices,
            std::vector<std::string>{"uploaded.png"});
  // Every other combo keeps the document's choices: the backend's own files.
  const InputSpec* ckpt = read.find("CheckpointLoaderSimple")->with_context(other).find_input("ckpt_name");
  EXPECT_EQ(ckpt->choices_from, ComboSource::kFixed);
  EXPECT_EQ(ckpt->choices, sample_context().checkpoints);
}

TEST(ObjectInfoSchemas, ReadsEveryFieldOfACustomNode) {
  const NodeSchemaRegistry read = schemas_from_object_info(custom_pack());
  const NodeSchema& loader = *read.find("PackLoader");
  EXPECT_EQ(loader.display_name, "Pack Loader");
  EXPECT_EQ(loader.description, "Loads a thing");
  EXPECT_EQ(loader.category, "pack");
  EXPECT_EQ(loader.python_module, "custom_nodes.pack");
  EXPECT_EQ(loader.output, std::vector<std::string>{"PACK_THING"});
  EXPECT_EQ(loader.output_name, std::vector<std::string>{"thing"});
  ASSERT_EQ(loader.required.size(), 2u);
  EXPECT_EQ(loader.required[0].name, "name");
  EXPECT_EQ(loader.required[0].choices, (std::vector<std::string>{"a.bin", "b.bin"}));
  EXPECT_EQ(loader.required[1].type, "COMBO");
  EXPECT_EQ(loader.required[1].choices, (std::vector<std::string>{"fast", "slow"}));
  const NodeSchema& sink = *read.find("PackSink");
  EXPECT_TRUE(sink.output_node);
  EXPECT_TRUE(sink.experimental);
  EXPECT_FALSE(sink.deprecated);
  EXPECT_EQ(sink.display_name, "PackSink");
  ASSERT_EQ(sink.hidden.size(), 1u);
  EXPECT_EQ(sink.hidden[0].kind, "PROMPT");
  ASSERT_EQ(sink.optional.size(), 1u);
  EXPECT_NEAR(sink.optional[0].options["max"].get<double>(), 2.0, 1e-9);
  EXPECT_EQ(sink.find_input("image")->choices_from, ComboSource::kInputImages);
}

TEST(ObjectInfoSchemas, AnOutputWithoutATooltipMayBeNull) {
  // What ComfyUI's V3 nodes (ImageBlur, Canny, ...) write.
  const json blur = {{"ImageBlur",
                      {{"input", {{"required", {{"image", {"IMAGE"}}}}}},
                       {"output", {"IMAGE"}},
                       {"output_tooltips", {nullptr}}}}};
  const NodeSchemaRegistry read = schemas_from_object_info(blur);
  EXPECT_EQ(read.find("ImageBlur")->output_tooltips, std::vector<std::string>{""});
}

TEST(ObjectInfoSchemas, CustomLinkTypesValidateAGraph) {
  const NodeSchemaRegistry read = schemas_from_object_info(custom_pack());
  const SchemaContext context = sample_context();
  const auto ok = validate_workflow(parse_workflow(pack_graph("slow", "cat.png")), read, context);
  EXPECT_TRUE(ok.ok) << ok.node_errors.dump();
  EXPECT_EQ(ok.outputs_to_execute, std::vector<std::string>{"2"});

  const auto bad_mode = validate_workflow(parse_workflow(pack_graph("medium", "cat.png")), read, context);
  ASSERT_FALSE(bad_mode.ok);
  EXPECT_EQ(bad_mode.node_errors["1"]["errors"][0]["type"], "value_not_in_list");

  const auto not_uploaded = validate_workflow(parse_workflow(pack_graph("slow", "x.png")), read, context);
  ASSERT_FALSE(not_uploaded.ok);
  EXPECT_EQ(not_uploaded.node_errors["2"]["errors"][0]["type"], "value_not_in_list");
}

TEST(ObjectInfoSchemas, MalformedDocumentsAreInvalidArguments) {
  using graph_test::expect_error;
  const auto refused = [](const json& document) {
    expect_error([&] { schemas_from_object_info(document); }, ErrorCode::kInvalidArgument);
  };
  refused(json::array());
  refused({{"Node", "not a definition"}});
  refused({{"Node", {{"input", {{"required", {{"x", "INT"}}}}}}}});            // not a list
  refused({{"Node", {{"input", {{"required", {{"x", {42}}}}}}}}});             // type not a name
  refused({{"Node", {{"input", {{"required", {{"x", {"INT", "min=0"}}}}}}}}});  // options not an object
  refused({{"Node", {{"input", {{"required", {{"x", {"COMBO", {{"options", "a"}}}}}}}}}}});
  refused({{"Node", {{"input", {{"required", json::array()}}}}}});
  refused({{"Node", {{"input", {{"required", {{"x", {"INT"}}}}}}, {"input_order", {{"required", {"y"}}}}}}});
  refused({{"Node", {{"output", {"IMAGE"}}, {"output_name", {"a", "b"}}}}});
  refused({{"Node", {{"output", {"IMAGE"}}, {"output_is_list", {1}}}}});
  refused({{"Node", {{"output_node", "yes"}}}});
  const Error named = expect_error(
      [] { schemas_from_object_info({{"Broken", {{"category", 3}}}}); }, ErrorCode::kInvalidArgument);
  EXPECT_NE(std::string(named.what()).find("Broken"), std::string::npos);
}

}  // namespace
}  // namespace df::graph

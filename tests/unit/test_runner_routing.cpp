// Unit tests for routing at intake: which runners can run a graph, preferred first.
#include <gtest/gtest.h>

#include "api/runner_routing.h"
#include "nodes/packs/node_packs.h"
#include "test_graph_support.h"

namespace df::api {
namespace {

using nlohmann::json;

constexpr const char* kNativeCheckpoint = "v1-5-pruned-emaonly-fp16.safetensors";

graph::SchemaContext context_with(std::vector<std::string> checkpoints) {
  graph::SchemaContext context;
  context.checkpoints = std::move(checkpoints);
  context.input_images = {"upload.png"};
  context.samplers = nodes::supported_samplers();
  context.schedulers = nodes::supported_schedulers();
  return context;
}

const graph::NodeSchemaRegistry& builtin() {
  static const graph::NodeSchemaRegistry schemas = nodes::builtin_node_schemas();
  return schemas;
}

NativeRunners native_runners(bool present = true) {
  return {present, &builtin(), context_with({kNativeCheckpoint})};
}

// A backend offering the built-in nodes with `checkpoints` in its folder, plus `extra` classes.
backends::BackendStatus backend(const std::string& name, bool up,
                                std::vector<std::string> checkpoints, json extra = json::object()) {
  backends::BackendStatus status;
  status.spec.name = name;
  status.spec.url = "http://127.0.0.1:1";
  status.up = up;
  status.discovered = true;
  graph::SchemaContext context = context_with(std::move(checkpoints));
  context.input_images = {"only-on-the-backend.png"};
  status.offer.object_info = graph::object_info(builtin(), context);
  status.offer.object_info.update(extra);
  status.offer.fingerprint = status.offer.object_info.dump();
  return status;
}

// A custom node pack: a node that takes an IMAGE and returns it under a custom link type.
json custom_pack() {
  return {{"PackSharpen",
           {{"input", {{"required", {{"images", {"IMAGE"}}, {"mode", {"COMBO", {{"options", {"soft", "hard"}}}}}}}}},
            {"output", {"IMAGE"}},
            {"output_is_list", {false}},
            {"output_name", {"IMAGE"}},
            {"output_node", false},
            {"category", "pack"}}}};
}

graph::Workflow sd15(const std::string& ckpt = kNativeCheckpoint) {
  json prompt = graph_test::legacy_sd15();
  prompt["4"]["inputs"]["ckpt_name"] = ckpt;
  return graph::parse_workflow(prompt);
}

graph::Workflow sd15_sharpened() {
  json prompt = graph_test::legacy_sd15();
  prompt["10"] = {{"class_type", "PackSharpen"}, {"inputs", {{"images", {"8", 0}}, {"mode", "hard"}}}};
  prompt["9"]["inputs"]["images"] = {"10", 0};
  return graph::parse_workflow(prompt);
}

TEST(RunnerRouting, NativeFirstThenBackendsUpBeforeDown) {
  BackendSchemas schemas;
  const std::vector<backends::BackendStatus> fleet = {
      backend("asleep", false, {kNativeCheckpoint}), backend("awake", true, {kNativeCheckpoint})};
  const RoutingDecision decision = route_workflow(sd15(), native_runners(), fleet, schemas);
  EXPECT_EQ(decision.runners,
            (std::vector<std::string>{"native", "backend:awake", "backend:asleep"}));
  EXPECT_TRUE(decision.validation.ok);
  EXPECT_EQ(decision.validation.outputs_to_execute, std::vector<std::string>{"9"});
}

TEST(RunnerRouting, ACustomNodeGoesToTheBackendsThatHaveIt) {
  BackendSchemas schemas;
  const std::vector<backends::BackendStatus> fleet = {
      backend("plain", true, {kNativeCheckpoint}),
      backend("pack", true, {kNativeCheckpoint}, custom_pack())};
  const RoutingDecision decision = route_workflow(sd15_sharpened(), native_runners(), fleet, schemas);
  EXPECT_EQ(decision.runners, std::vector<std::string>{"backend:pack"});
}

TEST(RunnerRouting, AFileOnlyABackendHasGoesToThatBackend) {
  BackendSchemas schemas;
  const std::vector<backends::BackendStatus> fleet = {backend("b", true, {"xl.safetensors"})};
  EXPECT_EQ(route_workflow(sd15("xl.safetensors"), native_runners(), fleet, schemas).runners,
            std::vector<std::string>{"backend:b"});
  EXPECT_EQ(route_workflow(sd15(), native_runners(), fleet, schemas).runners,
            std::vector<std::string>{"native"});
}

TEST(RunnerRouting, WithoutNativeRunnersOnlyDiscoveredBackendsCount) {
  BackendSchemas schemas;
  backends::BackendStatus never_answered;
  never_answered.spec.name = "new";
  const std::vector<backends::BackendStatus> fleet = {never_answered,
                                                      backend("b", false, {kNativeCheckpoint})};
  EXPECT_EQ(route_workflow(sd15(), native_runners(false), fleet, schemas).runners,
            std::vector<std::string>{"backend:b"});
}

TEST(RunnerRouting, BackendImageUploadsAreThisServicesUploads) {
  BackendSchemas schemas;
  json prompt = graph_test::legacy_sd15();
  prompt["10"] = {{"class_type", "LoadImage"}, {"inputs", {{"image", "upload.png"}}}};
  prompt["11"] = {{"class_type", "PreviewImage"}, {"inputs", {{"images", {"10", 0}}}}};
  const std::vector<backends::BackendStatus> fleet = {backend("b", true, {kNativeCheckpoint})};
  EXPECT_EQ(route_workflow(graph::parse_workflow(prompt), native_runners(false), fleet, schemas).runners,
            std::vector<std::string>{"backend:b"});
  prompt["10"]["inputs"]["image"] = "only-on-the-backend.png";
  prompt.erase("9");  // the only output left needs the image
  EXPECT_FALSE(
      route_workflow(graph::parse_workflow(prompt), native_runners(false), fleet, schemas).routed());
}

TEST(RunnerRouting, ANodeTypeNoRunnerHasIsAMissingNodeTypeError) {
  BackendSchemas schemas;
  json prompt = graph_test::legacy_sd15();
  prompt["20"] = {{"class_type", "ImpactWildcardProcessor"}, {"inputs", json::object()}};
  const std::vector<backends::BackendStatus> fleet = {backend("pack", true, {kNativeCheckpoint}, custom_pack())};
  const RoutingDecision decision =
      route_workflow(graph::parse_workflow(prompt), native_runners(), fleet, schemas);
  EXPECT_FALSE(decision.routed());
  EXPECT_EQ(decision.missing_node_types, std::vector<std::string>{"ImpactWildcardProcessor"});
  EXPECT_TRUE(decision.missing_files.empty());
  EXPECT_EQ(decision.validation.error["type"], "missing_node_type");
  EXPECT_EQ(decision.validation.error["extra_info"]["class_type"], "ImpactWildcardProcessor");
  const Error error = decision.error();
  EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(std::string(error.what()).find("node types ImpactWildcardProcessor"), std::string::npos);
  EXPECT_EQ(error.details()["missing_node_types"], json::array({"ImpactWildcardProcessor"}));
  EXPECT_EQ(error.details()["error"]["type"], "missing_node_type");
}

TEST(RunnerRouting, AFileNoRunnerHasGivesTheNativeRunnersNodeErrors) {
  BackendSchemas schemas;
  const std::vector<backends::BackendStatus> fleet = {backend("b", true, {"xl.safetensors"})};
  const RoutingDecision decision =
      route_workflow(sd15("nowhere.safetensors"), native_runners(), fleet, schemas);
  EXPECT_FALSE(decision.routed());
  EXPECT_TRUE(decision.missing_node_types.empty());
  EXPECT_EQ(decision.missing_files, std::vector<std::string>{"nowhere.safetensors"});
  EXPECT_EQ(decision.validation.error["type"], "prompt_outputs_failed_validation");
  EXPECT_EQ(decision.validation.node_errors["4"]["errors"][0]["type"], "value_not_in_list");
  EXPECT_EQ(decision.error().details()["missing_files"], json::array({"nowhere.safetensors"}));
}

TEST(RunnerRouting, ModelNamesWithoutExtensionsAreFilesButSamplersAreNot) {
  BackendSchemas schemas;
  json prompt = graph_test::legacy_sd15();
  prompt["4"]["inputs"]["ckpt_name"] = "folder-model";
  prompt["3"]["inputs"]["sampler_name"] = "no_such_sampler";
  const RoutingDecision decision = route_workflow(graph::parse_workflow(prompt), native_runners(),
                                                  {backend("b", true, {"xl"})}, schemas);
  EXPECT_FALSE(decision.routed());
  EXPECT_EQ(decision.missing_files, std::vector<std::string>{"folder-model"});
}

TEST(RunnerRouting, NodeTypesSplitOverRunnersGiveTheClosestRunnersErrors) {
  BackendSchemas schemas;
  backends::BackendStatus pack_only;
  pack_only.spec.name = "pack";
  pack_only.up = pack_only.discovered = true;
  pack_only.offer.object_info = custom_pack();
  const RoutingDecision decision =
      route_workflow(sd15_sharpened(), native_runners(), {pack_only}, schemas);
  EXPECT_FALSE(decision.routed());
  EXPECT_TRUE(decision.missing_node_types.empty());
  // The native runner lacks only PackSharpen; the pack lacks every other node.
  EXPECT_EQ(decision.validation.error["type"], "missing_node_type");
  EXPECT_EQ(decision.validation.error["extra_info"]["class_type"], "PackSharpen");
}

TEST(RunnerRouting, NoRunnerAtAll) {
  BackendSchemas schemas;
  const RoutingDecision decision = route_workflow(sd15(), native_runners(false), {}, schemas);
  EXPECT_FALSE(decision.routed());
  EXPECT_EQ(decision.missing_node_types.size(), 6u);  // seven nodes, two CLIPTextEncode
  EXPECT_EQ(decision.validation.error["type"], "missing_node_type");
}

TEST(RunnerRouting, BackendSchemasAreReadOncePerOfferAndMalformedOnesRefused) {
  BackendSchemas schemas;
  backends::BackendStatus status = backend("b", true, {kNativeCheckpoint});
  const auto first = schemas.of(status);
  EXPECT_EQ(schemas.of(status), first);
  status.offer.object_info = custom_pack();
  status.offer.fingerprint = "changed";
  EXPECT_NE(schemas.of(status), first);
  EXPECT_NE(schemas.of(status)->find("PackSharpen"), nullptr);
  status.offer.object_info = {{"Broken", {{"output", "IMAGE"}}}};
  status.offer.fingerprint = "broken";
  graph_test::expect_error([&] { schemas.of(status); }, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace df::api

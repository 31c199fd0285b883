// Unit tests for parsing workflows in ComfyUI's API format.
#include <gtest/gtest.h>

#include "graph/graph_topology.h"
#include "graph/workflow.h"
#include "test_graph_support.h"

namespace df::graph {
namespace {

using graph_test::expect_error;
using nlohmann::json;

TEST(GraphWorkflow, ParsesTheLegacyDefaultGraph) {
  const Workflow workflow = parse_workflow(graph_test::legacy_sd15());
  ASSERT_EQ(workflow.nodes.size(), 7u);
  const Node& sampler = *workflow.find("3");
  EXPECT_EQ(sampler.id, "3");
  EXPECT_EQ(sampler.class_type, "KSampler");
  EXPECT_EQ(sampler.title, "KSampler");
  EXPECT_EQ(sampler.input("seed")->kind, InputKind::kConstant);
  EXPECT_EQ(sampler.input("seed")->value, 156680208700286);
  const NodeInput& model = *sampler.input("model");
  EXPECT_EQ(model.kind, InputKind::kLink);
  EXPECT_EQ(model.link.node_id, "4");
  EXPECT_EQ(model.link.slot, 0);
  EXPECT_EQ(workflow.find("4")->title, "Load Checkpoint");
  EXPECT_EQ(workflow.find("99"), nullptr);
  EXPECT_EQ(workflow.source, graph_test::legacy_sd15());
}

TEST(GraphWorkflow, UnwrapsListWidgetValues) {
  const Workflow workflow = parse_workflow(json::parse(R"({
    "1": {"class_type": "X", "inputs": {"points": {"__value__": [1, 2, 3]}, "d": {"a": 1}}}})"));
  const Node& node = *workflow.find("1");
  EXPECT_EQ(node.input("points")->kind, InputKind::kConstant);
  EXPECT_EQ(node.input("points")->value, json::parse("[1, 2, 3]"));
  EXPECT_EQ(node.input("d")->value, json::parse(R"({"a": 1})"));
}

TEST(GraphWorkflow, ClassifiesLinks) {
  const Workflow workflow = parse_workflow(json::parse(R"({
    "1": {"class_type": "X", "inputs": {
      "ok": ["2", 1], "numeric_id": [2, 0], "three": ["2", 0, 1], "negative": ["2", -1],
      "float_slot": ["2", 0.0], "bad_id": [null, 0], "empty": []}}})"));
  const Node& node = *workflow.find("1");
  EXPECT_EQ(node.input("ok")->kind, InputKind::kLink);
  EXPECT_EQ(node.input("ok")->link.slot, 1);
  EXPECT_EQ(node.input("numeric_id")->kind, InputKind::kLink);
  EXPECT_EQ(node.input("numeric_id")->link.node_id, "2");
  for (const char* name : {"three", "negative", "float_slot", "bad_id", "empty"}) {
    EXPECT_EQ(node.input(name)->kind, InputKind::kMalformedLink) << name;
  }
  EXPECT_EQ(node.input("three")->value, json::parse(R"(["2", 0, 1])"));
}

TEST(GraphWorkflow, ToleratesMissingOptionalParts) {
  const Workflow workflow = parse_workflow(json::parse(R"({
    "1": {"class_type": "X"}, "2": {"inputs": {}}, "3": {"class_type": "Y", "_meta": 5}})"));
  EXPECT_TRUE(workflow.find("1")->inputs.empty());
  EXPECT_EQ(workflow.find("2")->class_type, "");
  EXPECT_FALSE(workflow.find("3")->title.has_value());
  EXPECT_TRUE(parse_workflow(json::object()).nodes.empty());
}

TEST(GraphWorkflow, RejectsMalformedStructure) {
  auto e = expect_error([] { parse_workflow(json::array()); }, ErrorCode::kInvalidArgument);
  EXPECT_STREQ(e.what(), "A workflow must be a JSON object that maps node ids to nodes");
  e = expect_error([] { parse_workflow(json::parse(R"({"5": "KSampler"})")); },
                   ErrorCode::kInvalidArgument);
  EXPECT_EQ(e.details()["node_id"], "5");
  e = expect_error([] { parse_workflow(json::parse(R"({"5": {"class_type": 3}})")); },
                   ErrorCode::kInvalidArgument);
  EXPECT_STREQ(e.what(), "Node '5': class_type must be a string");
  e = expect_error(
      [] { parse_workflow(json::parse(R"({"5": {"class_type": "X", "inputs": [1, 2]}})")); },
      ErrorCode::kInvalidArgument);
  EXPECT_STREQ(e.what(), "Node '5': inputs must be a JSON object");
}

TEST(GraphTopology, UpstreamClosureFollowsLinks) {
  const Workflow workflow = parse_workflow(graph_test::legacy_sd15());
  EXPECT_EQ(upstream_closure(workflow, {"8"}),
            (std::set<std::string>{"3", "4", "5", "6", "7", "8"}));
  EXPECT_EQ(upstream_closure(workflow, {"5"}), (std::set<std::string>{"5"}));
  EXPECT_TRUE(dependency_cycles(workflow, upstream_closure(workflow, {"9"})).empty());
}

TEST(GraphTopology, FindsCyclesAndSelfLinks) {
  const Workflow workflow = parse_workflow(json::parse(R"({
    "1": {"class_type": "A", "inputs": {"x": ["2", 0]}},
    "2": {"class_type": "A", "inputs": {"x": ["3", 0], "y": ["9", 0]}},
    "3": {"class_type": "A", "inputs": {"x": ["1", 0]}},
    "4": {"class_type": "A", "inputs": {"x": ["4", 0], "y": ["1", 0]}},
    "5": {"class_type": "A", "inputs": {"x": ["4", 0]}}})"));
  const auto all = upstream_closure(workflow, {"5"});
  EXPECT_EQ(dependency_cycles(workflow, all),
            (std::vector<std::vector<std::string>>{{"1", "2", "3"}, {"4"}}));
}

}  // namespace
}  // namespace df::graph

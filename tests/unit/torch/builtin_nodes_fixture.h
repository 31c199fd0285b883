// A test fixture running builtin node implementations as one node of a prompt, writing under a
// fresh folder.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "../test_support.h"
#include "nodes/builtin_nodes.h"
#include "nodes/node_values.h"

namespace df::test {

class BuiltinNodesTest : public ::testing::Test {
 protected:
  // `node_id` is the node the prompt names; output/ and temp/ lie in a folder named after
  // `dir_prefix`.
  BuiltinNodesTest(const std::string& dir_prefix, std::string node_id, nlohmann::json prompt,
                   nlohmann::json extra)
      : dir(dir_prefix),
        node_id(std::move(node_id)),
        prompt(std::move(prompt)),
        extra(std::move(extra)) {
    env.output_dir = (dir.path() / "output").string();
    env.temp_dir = (dir.path() / "temp").string();
    registry = nodes::builtin_node_impls(nodes::NodeResources{store, env});
  }

  // Runs `class_type` on `inputs`; returns its outputs and leaves its UI result in `ui`.
  std::vector<graph::Value> run(const char* class_type, const graph::NodeInputs& inputs,
                                nlohmann::json* ui = nullptr) {
    graph::NodeContext ctx(node_id, {}, [] { return false; }, prompt, extra);
    auto outputs = registry.create(class_type)->execute(inputs, ctx);
    if (ui) *ui = ctx.ui_output();
    return outputs;
  }

  TestDir dir;
  std::string node_id;
  nlohmann::json prompt;
  nlohmann::json extra;
  nodes::CheckpointStore store{nodes::CheckpointStoreOptions{}};
  nodes::RunEnvironment env;
  graph::NodeImplRegistry registry;
};

}  // namespace df::test

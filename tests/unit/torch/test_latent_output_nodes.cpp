// Node-level tests: SaveAnimatedWEBP's file, UI result and artifact; primitives feeding widget
// inputs; EmptyLatentImage batches through the batch nodes.
#include <gtest/gtest.h>

#include <webp/demux.h>

#include <filesystem>
#include <vector>

#include "../test_support.h"
#include "builtin_nodes_fixture.h"
#include "core/files.h"
#include "nodes/builtin_nodes.h"
#include "nodes/node_values.h"

namespace df::nodes {
namespace {

using graph::NodeInputs;
using graph::Value;
using nlohmann::json;

class LatentOutputNodes : public test::BuiltinNodesTest {
 protected:
  LatentOutputNodes()
      : BuiltinNodesTest("df_latent_output_", "9",
                         json::parse(R"({"9": {"class_type": "SaveAnimatedWEBP", "inputs": {}}})"),
                         json::parse(R"({"workflow": {"nodes": []}})")) {
    env.on_artifact = [this](const ArtifactRecord& record) { artifacts.push_back(record); };
  }

  std::vector<ArtifactRecord> artifacts;

  NodeInputs animation_inputs(int64_t frames) {
    NodeInputs in("9", "SaveAnimatedWEBP");
    in.set_linked("images", Value::of("IMAGE", ImageValue{at::rand({frames, 8, 16, 3})}));
    in.set_constant("filename_prefix", "clips/anim");
    in.set_constant("fps", 10.0);
    in.set_constant("lossless", false);
    in.set_constant("quality", 80);
    in.set_constant("method", "fastest");
    return in;
  }
};

TEST_F(LatentOutputNodes, SaveAnimatedWebpWritesOneNumberedAnimation) {
  json ui;
  const NodeInputs in = animation_inputs(3);
  const auto outputs = run("SaveAnimatedWEBP", in, &ui);
  EXPECT_EQ(ui, json::parse(R"({"images": [{"filename": "anim_00001_.webp", "subfolder": "clips",
                                            "type": "output"}], "animated": [true]})"));
  const auto path = std::filesystem::path(env.output_dir) / "clips" / "anim_00001_.webp";
  ASSERT_TRUE(std::filesystem::is_regular_file(path));
  const std::vector<uint8_t> bytes = read_file_bytes(path.string());
  const WebPData data{bytes.data(), bytes.size()};
  WebPDemuxer* demux = WebPDemux(&data);
  ASSERT_NE(demux, nullptr);
  EXPECT_EQ(WebPDemuxGetI(demux, WEBP_FF_FRAME_COUNT), 3u);
  EXPECT_EQ(WebPDemuxGetI(demux, WEBP_FF_CANVAS_WIDTH), 16u);
  EXPECT_EQ(WebPDemuxGetI(demux, WEBP_FF_CANVAS_HEIGHT), 8u);
  WebPDemuxDelete(demux);

  ASSERT_EQ(artifacts.size(), 1u);
  EXPECT_EQ(artifacts[0].filename, "anim_00001_.webp");
  EXPECT_EQ(artifacts[0].subfolder, "clips");
  EXPECT_EQ(artifacts[0].kind, "output");
  EXPECT_EQ(artifacts[0].format, ImageFormat::kWebp);
  EXPECT_EQ(artifacts[0].width, 16);
  EXPECT_EQ(artifacts[0].height, 8);
  EXPECT_EQ(artifacts[0].bytes, bytes.size());
  // The images pass through.
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_TRUE(outputs[0].as<ImageValue>().pixels.equal(in.get<ImageValue>("images").pixels));
}

TEST_F(LatentOutputNodes, SaveAnimatedWebpCountsOnAndFlagsSingleFrames) {
  run("SaveAnimatedWEBP", animation_inputs(2));
  json ui;
  run("SaveAnimatedWEBP", animation_inputs(1), &ui);
  EXPECT_EQ(ui["images"][0]["filename"], "anim_00002_.webp");
  EXPECT_EQ(ui["animated"], json::parse("[false]"));
}

TEST_F(LatentOutputNodes, SaveImageCountsOnAfterAnAnimationOfTheSamePrefix) {
  run("SaveAnimatedWEBP", animation_inputs(2));
  NodeInputs in("9", "SaveImage");
  in.set_linked("images", Value::of("IMAGE", ImageValue{at::rand({2, 8, 16, 3})}));
  in.set_constant("filename_prefix", "clips/anim");
  json ui;
  run("SaveImage", in, &ui);
  EXPECT_EQ(ui["images"][0]["filename"], "anim_00002_.png");
  EXPECT_EQ(ui["images"][1]["filename"], "anim_00003_.png");
  EXPECT_EQ(ui["images"][1]["subfolder"], "clips");
}

TEST_F(LatentOutputNodes, SaveAnimatedWebpRefusesUnknownMethodsAndEscapes) {
  NodeInputs in = animation_inputs(2);
  in.set_constant("method", "fast");
  EXPECT_EQ(test::error_code_of([&] { run("SaveAnimatedWEBP", in); }), ErrorCode::kInvalidArgument);
  in = animation_inputs(2);
  in.set_constant("filename_prefix", "../outside");
  EXPECT_EQ(test::error_code_of([&] { run("SaveAnimatedWEBP", in); }), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(artifacts.empty());
}

TEST_F(LatentOutputNodes, PrimitivesFeedWidgetInputs) {
  NodeInputs seed_source("1", "PrimitiveInt");
  seed_source.set_constant("value", "42");
  NodeInputs downstream("2", "KSampler");
  downstream.set_linked("seed", run("PrimitiveInt", seed_source)[0]);
  EXPECT_EQ(downstream.get_uint("seed"), 42u);

  NodeInputs text_source("3", "PrimitiveStringMultiline");
  text_source.set_constant("value", "a cat\non a mat");
  NodeInputs flag_source("4", "PrimitiveBoolean");
  flag_source.set_constant("value", true);
  NodeInputs float_source("5", "PrimitiveFloat");
  float_source.set_constant("value", 2.5);
  NodeInputs node("6", "Anything");
  node.set_linked("text", run("PrimitiveStringMultiline", text_source)[0]);
  node.set_linked("flag", run("PrimitiveBoolean", flag_source)[0]);
  node.set_linked("cfg", run("PrimitiveFloat", float_source)[0]);
  EXPECT_EQ(node.get_string("text"), "a cat\non a mat");
  EXPECT_TRUE(node.get_bool("flag"));
  EXPECT_DOUBLE_EQ(node.get_float("cfg"), 2.5);
  EXPECT_EQ(node.linked("cfg").type(), "FLOAT");
}

TEST_F(LatentOutputNodes, EmptyLatentBatchesFlowThroughTheBatchNodes) {
  NodeInputs empty("1", "EmptyLatentImage");
  empty.set_constant("width", 64);
  empty.set_constant("height", 48);
  empty.set_constant("batch_size", 3);
  const Value latent = run("EmptyLatentImage", empty)[0];
  EXPECT_EQ(latent.as<LatentValue>().samples.sizes().vec(), (std::vector<int64_t>{3, 4, 6, 8}));

  NodeInputs pick("2", "LatentFromBatch");
  pick.set_linked("samples", latent);
  pick.set_constant("batch_index", 1);
  pick.set_constant("length", 2);
  const Value picked = run("LatentFromBatch", pick)[0];
  EXPECT_EQ(picked.as<LatentValue>().batch_index, (std::vector<int>{1, 2}));

  NodeInputs repeat("3", "RepeatLatentBatch");
  repeat.set_linked("samples", picked);
  repeat.set_constant("amount", 2);
  const Value output = run("RepeatLatentBatch", repeat)[0];
  const LatentValue& repeated = output.as<LatentValue>();
  EXPECT_EQ(repeated.samples.size(0), 4);
  EXPECT_EQ(repeated.batch_index, (std::vector<int>{1, 2, 3, 4}));
}

}  // namespace
}  // namespace df::nodes

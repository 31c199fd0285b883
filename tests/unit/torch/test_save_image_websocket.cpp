// SaveImageWebsocket: each image of the batch streamed as a PNG, nothing written, no UI result.
#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "../test_support.h"
#include "builtin_nodes_fixture.h"
#include "image/image.h"
#include "nodes/builtin_nodes.h"
#include "nodes/node_values.h"

namespace df::nodes {
namespace {

using graph::NodeInputs;
using graph::Value;
using nlohmann::json;

class SaveImageWebsocketNode : public test::BuiltinNodesTest {
 protected:
  SaveImageWebsocketNode()
      : BuiltinNodesTest("df_save_image_websocket_", "ws",
                         json::parse(R"({"ws": {"class_type": "SaveImageWebsocket", "inputs": {}}})"),
                         json()) {
    env.on_streamed_image = [this](const StreamedImage& image) { streamed.push_back(image); };
  }

  std::vector<StreamedImage> streamed;

  std::vector<Value> run(const at::Tensor& pixels, json* ui = nullptr) {
    NodeInputs in("ws", "SaveImageWebsocket");
    in.set_linked("images", Value::of("IMAGE", ImageValue{pixels}));
    return BuiltinNodesTest::run("SaveImageWebsocket", in, ui);
  }
};

TEST_F(SaveImageWebsocketNode, StreamsOnePngPerImageAndWritesNothing) {
  const at::Tensor pixels = at::rand({2, 5, 7, 3});
  json ui;
  const auto outputs = run(pixels, &ui);
  EXPECT_TRUE(outputs.empty());
  EXPECT_TRUE(ui.is_null());
  ASSERT_EQ(streamed.size(), 2u);
  for (int index = 0; index < 2; ++index) {
    const StreamedImage& image = streamed[static_cast<size_t>(index)];
    EXPECT_EQ(image.node_id, "ws");
    EXPECT_EQ(image.index, index);
    EXPECT_EQ(image.count, 2);
    EXPECT_EQ(image.width, 7);
    EXPECT_EQ(image.height, 5);
    const Image8 decoded = decode_image(image.png);
    ASSERT_EQ(decoded.width, 7);
    ASSERT_EQ(decoded.height, 5);
    ASSERT_EQ(decoded.channels, 3);
    // ComfyUI's clip(255 * x).astype(uint8): truncated, not rounded.
    const at::Tensor expected = (pixels[index] * 255.0).clamp(0.0, 255.0).to(at::kByte).contiguous();
    const std::vector<uint8_t> expected_bytes(expected.data_ptr<uint8_t>(),
                                              expected.data_ptr<uint8_t>() + expected.numel());
    EXPECT_EQ(decoded.pixels, expected_bytes);
    EXPECT_TRUE(read_embedded_metadata(image.png).text.empty());  // no prompt, no workflow
  }
  EXPECT_FALSE(std::filesystem::exists(env.output_dir));
  EXPECT_FALSE(std::filesystem::exists(env.temp_dir));
}

TEST_F(SaveImageWebsocketNode, NobodyListeningIsNoError) {
  env.on_streamed_image = nullptr;
  EXPECT_TRUE(run(at::rand({1, 4, 4, 3})).empty());
}

TEST_F(SaveImageWebsocketNode, RefusesWhatIsNotAnImageBatch) {
  EXPECT_EQ(test::error_code_of([&] { run(at::rand({4, 4, 3})); }), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(streamed.empty());
}

}  // namespace
}  // namespace df::nodes

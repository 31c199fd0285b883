// SaveImageWebsocket's torch-free parts: its /object_info entry, ComfyUI's binary image frames and
// the progress message each streamed image brings.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "api/comfy_binary_frames.h"
#include "api/comfy_messages.h"
#include "graph/node_schema.h"
#include "nodes/packs/node_packs.h"

namespace df::api {
namespace {

using nlohmann::json;

uint32_t u32_at(const std::string& frame, size_t offset) {
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i) value = (value << 8) | static_cast<uint8_t>(frame.at(offset + i));
  return value;
}

LiveImage png_image(std::vector<uint8_t> bytes, std::string frame_id = "f1") {
  return {"save_image_websocket_node", "image/png", std::move(bytes), std::move(frame_id)};
}

TEST(ComfyStreamedImages, SchemaIsComfyUIsBundledCustomNode) {
  const json info = graph::object_info(nodes::builtin_node_schemas(), graph::SchemaContext{});
  ASSERT_TRUE(info.contains("SaveImageWebsocket"));
  const json& node = info["SaveImageWebsocket"];
  EXPECT_EQ(node["display_name"], "SaveImageWebsocket");
  EXPECT_EQ(node["category"], "image");
  EXPECT_EQ(node["python_module"], "custom_nodes.websocket_image_save");
  EXPECT_EQ(node["description"], "");
  EXPECT_EQ(node["input"], json::parse(R"({"required": {"images": ["IMAGE"]}})"));
  EXPECT_EQ(node["input_order"], json::parse(R"({"required": ["images"]})"));
  EXPECT_EQ(node["output"], json::array());
  EXPECT_EQ(node["output_name"], json::array());
  EXPECT_EQ(node["output_node"], true);
}

TEST(ComfyStreamedImages, PngFrameIsPreviewImageWithFormatTwo) {
  const std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', 0, 0xff};
  const std::string frame = preview_image_frame(png_image(png));
  ASSERT_EQ(frame.size(), 8 + png.size());
  EXPECT_EQ(u32_at(frame, 0), 1u);  // PREVIEW_IMAGE
  EXPECT_EQ(u32_at(frame, 4), 2u);  // PNG
  EXPECT_EQ(frame.substr(8), std::string(png.begin(), png.end()));
  // What ComfyUI's websockets_api_example_ws_images.py keeps: everything after 8 bytes.
  EXPECT_EQ(frame.substr(0, 8), std::string("\0\0\0\1\0\0\0\2", 8));
}

TEST(ComfyStreamedImages, JpegPreviewFrameKeepsFormatOne) {
  const std::string frame = preview_image_frame({"3", "image/jpeg", {0xff, 0xd8}, ""});
  EXPECT_EQ(frame, std::string("\0\0\0\1\0\0\0\1\xff\xd8", 10));
}

TEST(ComfyStreamedImages, MetadataFrameNamesNodePromptAndImageType) {
  const std::vector<uint8_t> png = {1, 2, 3};
  const std::string frame = preview_image_with_metadata_frame(png_image(png), "p1");
  EXPECT_EQ(u32_at(frame, 0), 4u);  // PREVIEW_IMAGE_WITH_METADATA
  const uint32_t length = u32_at(frame, 4);
  ASSERT_EQ(frame.size(), 8 + length + png.size());
  EXPECT_EQ(json::parse(frame.substr(8, length)),
            json::parse(R"({"node_id": "save_image_websocket_node", "prompt_id": "p1",
                            "display_node_id": "save_image_websocket_node",
                            "parent_node_id": null, "real_node_id": "save_image_websocket_node",
                            "image_type": "image/png"})"));
  EXPECT_EQ(frame.substr(8 + length), "\1\2\3");
}

TEST(ComfyStreamedImages, LargeImageFramesAreWhole) {
  const std::vector<uint8_t> png(size_t{48} << 20, 0x5a);  // a 48 MiB image: no 32-bit slip
  const std::string plain = preview_image_frame(png_image(png));
  ASSERT_EQ(plain.size(), 8 + png.size());
  EXPECT_EQ(plain.back(), 0x5a);
  const std::string with_metadata = preview_image_with_metadata_frame(png_image(png), "p1");
  EXPECT_EQ(with_metadata.size(), 8 + u32_at(with_metadata, 4) + png.size());
}

TEST(ComfyStreamedImages, EachStreamedImageIsAProgressStepOfItsNode) {
  ComfyMessageTranslator translator("p1");
  Event started;
  started.type = "node_started";
  started.data = {{"node", "save_image_websocket_node"}, {"class_type", "SaveImageWebsocket"}};
  ASSERT_EQ(translator.translate(started).back()["type"], "executing");
  for (int index = 0; index < 2; ++index) {
    Event streamed;
    streamed.type = "streamed_image";
    streamed.data = {{"node", "save_image_websocket_node"}, {"index", index}, {"count", 2},
                     {"width", 64}, {"height", 64}, {"frame", "f" + std::to_string(index)}};
    const std::vector<json> messages = translator.translate(streamed);
    ASSERT_EQ(messages.size(), 1u);
    // ComfyUI's ProgressBar.update_absolute(step, total) before each image: 0-based steps.
    EXPECT_EQ(messages[0], json({{"type", "progress"},
                                 {"data", {{"value", index}, {"max", 2}, {"prompt_id", "p1"},
                                           {"node", "save_image_websocket_node"}}}}));
  }
}

}  // namespace
}  // namespace df::api

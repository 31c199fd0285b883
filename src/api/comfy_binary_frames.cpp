// ComfyUI's binary /ws image frames: a big-endian event type, then the image's own header.
#include "api/comfy_binary_frames.h"

#include <cstdint>

#include <nlohmann/json.hpp>

#include "core/json_text.h"

namespace df::api {
namespace {

constexpr uint32_t kPreviewImage = 1;
constexpr uint32_t kPreviewImageWithMetadata = 4;
constexpr uint32_t kJpegFormat = 1;
constexpr uint32_t kPngFormat = 2;

void append_u32_be(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((value >> shift) & 0xff);
}

}  // namespace

std::string preview_image_frame(const LiveImage& image) {
  std::string frame;
  frame.reserve(8 + image.bytes.size());
  append_u32_be(frame, kPreviewImage);
  append_u32_be(frame, image.media_type == "image/png" ? kPngFormat : kJpegFormat);
  frame.append(image.bytes.begin(), image.bytes.end());
  return frame;
}

std::string preview_image_with_metadata_frame(const LiveImage& image, const std::string& prompt_id) {
  const std::string metadata =
      dump_json({{"node_id", image.node},         {"prompt_id", prompt_id},
                 {"display_node_id", image.node}, {"parent_node_id", nullptr},
                 {"real_node_id", image.node},    {"image_type", image.media_type}});
  std::string frame;
  frame.reserve(8 + metadata.size() + image.bytes.size());
  append_u32_be(frame, kPreviewImageWithMetadata);
  append_u32_be(frame, static_cast<uint32_t>(metadata.size()));
  frame += metadata;
  frame.append(image.bytes.begin(), image.bytes.end());
  return frame;
}

}  // namespace df::api

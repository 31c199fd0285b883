// ComfyUI's binary /ws frames for images: PREVIEW_IMAGE (type 1) and PREVIEW_IMAGE_WITH_METADATA (4).
#pragma once

#include <string>

#include "core/live_image.h"

namespace df::api {

// [u32 BE 1][u32 BE image format: 1 JPEG, 2 PNG][image bytes], as ComfyUI's send_image frames it
// for clients that did not announce supports_preview_metadata (scripts).
std::string preview_image_frame(const LiveImage& image);

// [u32 BE 4][u32 BE length of the JSON][metadata JSON][image bytes]: the metadata names the node
// (node_id, display_node_id, real_node_id; parent_node_id null), the prompt and the image_type.
std::string preview_image_with_metadata_frame(const LiveImage& image, const std::string& prompt_id);

}  // namespace df::api

// An image a running job sends to the ComfyUI client that queued it, never stored.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace df {

struct LiveImage {
  std::string node;
  std::string media_type;  // "image/jpeg" (a latent preview) or "image/png" (a whole image)
  std::vector<uint8_t> bytes;
  // Empty for a latent preview, which goes out as it comes. A whole image (SaveImageWebsocket)
  // names the job event that marks its place among the job's messages: the client gets it right
  // after that event's messages.
  std::string frame_id;
};

}  // namespace df

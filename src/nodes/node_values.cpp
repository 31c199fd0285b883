// The CLIP value's two forms: SD text encoders with patches, or a DiT family's prompt encoder.
#include "nodes/node_values.h"

#include "core/error.h"

namespace df::nodes {

const engine::ClipPatcher& ClipValue::sd(const std::string& what) const {
  if (!clip) {
    throw Error(ErrorCode::kUnsupported,
                what + " works on SD 1.x/2.x/SDXL text encoders; this CLIP is a " +
                    engine::family_name(encoder->family()) + " text encoder");
  }
  return *clip;
}

engine::Conditioning ClipValue::encode(const std::string& prompt) const {
  if (encoder) return encoder->encode(prompt);
  return clip->patched()->encode(prompt);
}

}  // namespace df::nodes

// The interface of a DiT family's text side (ComfyUI's CLIP object for FLUX, SD3 and Z-Image):
// a prompt in, the conditioning its diffusion model reads out.
#pragma once

#include <string>

#include "engine/model_config.h"
#include "engine/text_conditioning.h"

namespace df::engine {

class PromptEncoder {
 public:
  virtual ~PromptEncoder() = default;
  // The family whose diffusion model reads this encoder's conditionings.
  virtual Family family() const = 0;
  // CLIPTextEncode: the conditioning of `prompt` (context, and pooled where the family has one).
  virtual Conditioning encode(const std::string& prompt) const = 0;
};

}  // namespace df::engine

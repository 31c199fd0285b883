// The /v1 generate job body of a plain DGX-Pixels generate request.
#include "pixels/generate_job_body.h"

#include "core/generation_request.h"

namespace df::pixels {

nlohmann::json generate_job_body(const GenerateRequest& request, const std::string& model_id) {
  nlohmann::json body = {{"type", "generate"},
                         {"model_id", model_id},
                         {"prompt", request.prompt},
                         {"width", request.width},
                         {"height", request.height},
                         {"steps", request.steps},
                         {"guidance", request.cfg_scale},
                         {"count", request.batch_size}};
  if (!request.negative_prompt.empty()) body["negative_prompt"] = request.negative_prompt;
  if (request.seed) body["seed"] = *request.seed;
  if (request.lora) {
    body["loras"] = nlohmann::json::array({lora_choice_to_json(LoraChoice{*request.lora})});
  }
  return body;
}

}  // namespace df::pixels

// What the endpoint answers to each DGX-Pixels request, on Dream Forge's jobs, models and queue.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "api/api_service.h"
#include "pixels/pixels_messages.h"
#include "registry/model_registry.h"
#include "store/store.h"

namespace df::pixels {

class PixelsRequests {
 public:
  // `models_root` holds the checkpoints/, loras/ and vae/ folders; `version` is the service's.
  // The uptime status reports counts from here.
  PixelsRequests(api::ApiService& api, store::Store& store, registry::ModelRegistry& models,
                 std::string models_root, std::string version);

  // The reply to a decoded request. generate and cancel answer their failures with job_error for
  // the job they name; other malformed or unknown requests throw (the server answers an error).
  nlohmann::ordered_json handle(const nlohmann::json& message);

 private:
  nlohmann::ordered_json generate(const GenerateRequest& request);
  nlohmann::ordered_json cancel(const CancelRequest& request);
  nlohmann::ordered_json list_models();
  nlohmann::ordered_json status();

  api::ApiService& api_;
  store::Store& store_;
  registry::ModelRegistry& models_;
  std::string models_root_;
  std::string version_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

// A rough estimate of a request's run time when the model has no recorded runs yet: 0.1 s a
// sampling step a megapixel an image (a middling GPU's pace for SD 1.x; a CPU is far slower).
double rough_estimate_s(const GenerateRequest& request);

}  // namespace df::pixels

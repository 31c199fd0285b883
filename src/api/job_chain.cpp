// The "chain" of generate jobs: schema, resolution, stages.
#include "api/job_chain.h"

#include <algorithm>

#include "core/generation_request.h"

namespace df::api {

using nlohmann::json;

json chain_schema() {
  return {{"type", "object"},
          {"additionalProperties", false},
          {"description", "Steps after generate: upscale the generated images"},
          {"properties",
           {{"upscale",
             {{"type", "object"},
              {"additionalProperties", false},
              {"required", {"scale"}},
              {"properties",
               {{"scale", {{"type", "number"}, {"minimum", 2}, {"maximum", 4}}},
                {"impl",
                 {{"type", "string"},
                  {"enum", {"auto", "diffusion", "gan"}},
                  {"default", "auto"},
                  {"description",
                   "gan: an upscale model (models/upscale_models); diffusion: the latent scaled "
                   "and sampled again at a low denoise; auto: gan when an upscale model is "
                   "installed"}}},
                {"strict_scale",
                 {{"type", "boolean"},
                  {"default", false},
                  {"description", "Resize to exactly scale x the size (gan gives its model's scale otherwise)"}}},
                {"model", {{"type", "string"}, {"minLength", 1}, {"description", "gan: the upscale model file"}}},
                {"denoise", {{"type", "number"}, {"exclusiveMinimum", 0}, {"maximum", 1}, {"default", 0.35}}},
                {"steps", {{"type", "integer"}, {"minimum", 1}, {"maximum", 10000},
                           {"description", "diffusion: the second pass's steps (default: half the first)"}}}}}}}}}};
}

Error chain_error(const std::string& field, const std::string& message) {
  return Error(ErrorCode::kInvalidArgument, "invalid job request: " + field + " " + message,
               {{"fields", {{{"field", field}, {"message", message}}}}, {"chain", true}});
}

bool is_chain_error(const Error& error) {
  return error.code() == ErrorCode::kInvalidArgument && error.details().value("chain", false);
}

json resolved_chain(const json& chain, int width, int height,
                    const std::vector<std::string>& upscale_models) {
  if (!chain.contains("upscale")) return json::object();
  const json& asked = chain["upscale"];
  UpscaleStep step;
  step.scale = asked.at("scale").get<double>();
  step.strict_scale = asked.value("strict_scale", false);
  step.denoise = asked.value("denoise", step.denoise);
  step.steps = asked.value("steps", 0);
  const std::string impl = asked.value("impl", "auto");
  const std::string model = asked.value("model", "");
  step.impl = impl != "auto" ? impl : (!model.empty() || !upscale_models.empty() ? "gan" : "diffusion");
  if (step.impl == "gan") {
    if (upscale_models.empty()) {
      throw chain_error("chain.upscale.impl",
                        "gan needs an upscale model in models/upscale_models, and none is installed; "
                        "use impl diffusion");
    }
    if (!model.empty() && std::find(upscale_models.begin(), upscale_models.end(), model) == upscale_models.end()) {
      throw chain_error("chain.upscale.model", "'" + model + "' is not a file of models/upscale_models");
    }
    step.model = model.empty() ? upscale_models.front() : model;
  } else if (!model.empty()) {
    throw chain_error("chain.upscale.model", "is for impl gan, not diffusion");
  }
  if (impl == "gan" && (asked.contains("denoise") || asked.contains("steps"))) {
    throw chain_error("chain.upscale.denoise", "and steps are for impl diffusion, not gan");
  }
  if (width * step.scale > 16384 || height * step.scale > 16384) {
    throw chain_error("chain.upscale.scale", "makes the image larger than 16384 pixels on a side");
  }
  return {{"upscale", upscale_step_to_json(step)}};
}

json job_stages(const Job& job) {
  const json* upscale = nullptr;
  if (const auto chain = job.spec.find("chain"); chain != job.spec.end() && chain->contains("upscale")) {
    upscale = &(*chain)["upscale"];
  }
  if (upscale == nullptr) return json::array({{{"name", "generate"}, {"weight", 1.0}}});
  double share = 0.15;
  if (upscale->value("impl", "") == "diffusion") {
    const double first = std::max(1, job.spec.value("steps", 1));
    const int asked = upscale->value("steps", 0);
    const double second = asked > 0 ? asked : std::max(1.0, static_cast<double>(static_cast<int>(first) / 2));
    share = second / (first + second);
  }
  return json::array({{{"name", "generate"}, {"weight", 1.0 - share}},
                      {{"name", "upscale"}, {"weight", share}}});
}

}  // namespace df::api

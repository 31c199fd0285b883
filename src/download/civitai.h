// The CivitAI source: models and versions through its REST API (/api/v1), files by downloadUrl.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "download/source.h"

namespace df::download {

class Civitai : public Source {
 public:
  // `base_url`: https://civitai.com, or another server speaking its API (DREAMFORGE_CIVITAI_URL);
  // `token` (CIVITAI_TOKEN) is sent as a bearer token, "" for none.
  Civitai(std::string base_url, std::string token, RetryPolicy retry = {});

  // The version named, else the model's newest (GET /api/v1/model-versions/{id} or
  // /api/v1/models/{id}); a slug is looked up with /api/v1/models?query=.
  Release resolve(const ModelRef& ref) override;
  // The version's safetensors weights (its primary file when that is one), else its PyTorch
  // checkpoint (accepted once the weights reader accepts its bytes). Throws Error(kUnsafeFormat)
  // when it offers no weights file of a type Dream Forge downloads.
  std::vector<RemoteFile> files_to_fetch(const ModelRef& ref, const Release& release) override;
  const HttpClient& client() const override { return client_; }

 private:
  std::string model_id_for(const ModelRef& ref);

  std::string base_url_;
  HttpClient client_;
};

// The release a model version's JSON describes (the model's name and type given apart, as
// /api/v1/models nests versions without them). Its listing holds the version's model files,
// the primary one first.
Release civitai_release(const ModelRef& ref, const std::string& model_name,
                        const std::string& model_type, const nlohmann::json& version);

// The models-root folder for a CivitAI model type (ComfyUI's names: checkpoints, loras, vae,
// embeddings, ...). Throws Error(kUnsupported) for types Dream Forge does not install.
std::string civitai_kind(const std::string& type);

// The model family of a CivitAI base model ("SD 1.5" -> sd1, "SDXL 1.0" -> sdxl); "" if unknown.
std::string civitai_family(const std::string& base_model);

// A model name as CivitAI's URLs spell it: lowercase words joined by '-'.
std::string civitai_slug(const std::string& name);

}  // namespace df::download

// The Model record: a model the registry knows, where it came from, its files and what it can do.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace df {

// One file of a model, relative to the model's folder, with the hash it was verified against.
struct ModelFile {
  std::string path;    // relative, '/' separators
  int64_t size = 0;    // bytes
  std::string sha256;  // lowercase hex
};

struct Model {
  // "<name>@<version>" for downloaded models; the folder or file name under the kind's folder for
  // models found there (a test model, a file copied in by hand).
  std::string id;
  std::string name;
  std::string kind = "checkpoints";  // the folder under the models root
  std::string family;                // sd1 | sd2 | sdxl | sdxl_refiner | flux | flux_schnell | sd3 | zimage
  std::string version;               // "" for models found on disk
  std::string source_uri;            // "hf:org/repo@rev#file", "civitai:123@456", "" when local
  std::string revision;              // the source's resolved revision (commit sha, version id)
  std::string format;                // diffusers | safetensors | pytorch-zip | pytorch-legacy
  std::string local_path;            // what the runner loads: a diffusers folder or a single file
  // local_path relative to the kind's folder with '/' separators: the name ComfyUI's loader nodes
  // (ckpt_name) and the runner use.
  std::string ckpt_name;
  std::string checkpoint_hash;       // sha256 of the main weights file; "" until computed
  std::vector<ModelFile> files;
  bool installed = true;  // its files are in place
  bool enabled = true;    // offered for jobs
  bool test_model = false;  // random weights (`dreamforge model create-tiny`)
  nlohmann::json parameters_schema = nlohmann::json::object();  // JSON Schema of a generate job
  std::vector<std::string> capabilities;                         // txt2img, img2img
  int native_resolution = 512;
  // How its diffusion weights are stored: "fp8", "bf16", "fp16" or "fp32" ("" when unknown).
  std::string weight_dtype;
  nlohmann::json extra = nlohmann::json::object();  // source details (license, base model, ...)
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

nlohmann::json model_to_json(const Model& model);
// Throws Error(kInvalidArgument) when required fields are missing or of the wrong type.
Model model_from_json(const nlohmann::json& json);

}  // namespace df

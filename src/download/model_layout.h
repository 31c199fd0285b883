// Where downloaded models live under the models root, and the registry entry of a finished one.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/model.h"
#include "download/source.h"

namespace df::download {

// <root>/<kind>/<name>@<version>/      installed models (moved in whole, once verified)
// <root>/.staging/<kind>/<id>/          downloads in progress (<file>.part while transferring)
// <root>/.quarantine/<kind>/<id>/       files whose bytes did not match their published hash
class ModelLayout {
 public:
  explicit ModelLayout(std::string models_root) : root_(std::move(models_root)) {}
  const std::string& root() const { return root_; }
  std::string kind_dir(const std::string& kind) const;
  std::string model_dir(const std::string& kind, const std::string& id) const;
  std::string staging_dir(const std::string& kind, const std::string& id) const;
  std::string quarantine_dir(const std::string& kind, const std::string& id) const;

 private:
  std::string root_;
};

// "<name>@<version>".
std::string model_id(const Release& release);

// The registry entry of a release whose verified `files` are in `model_dir`: a diffusers folder
// (model_index.json among them) or its one weights file (safetensors or a PyTorch checkpoint,
// whose format then says which layout) is what the runner loads; the checkpoint hash is that of
// the UNet or of the single weights file.
Model describe_download(const Release& release, std::vector<ModelFile> files,
                        const std::string& model_dir, const std::string& kind_dir);

// The model a folder's descriptor records, local_path made absolute; nullopt when the folder
// has no readable descriptor.
std::optional<Model> read_descriptor(const std::string& model_dir);

// What is wrong with the folder's files against the descriptor's sizes and hashes (each a line:
// missing, wrong size, wrong sha256); empty when all match. With `rehash` false only presence
// and sizes are checked.
std::vector<std::string> check_model_files(const std::string& model_dir, const Model& model,
                                           bool rehash);

}  // namespace df::download

// Model folder layout, registry entries of downloads, and checks of installed files.
#include "download/model_layout.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "download/file_digest.h"
#include "engine/tensor_file.h"
#include "registry/model_catalog.h"

namespace df::download {

namespace fs = std::filesystem;

namespace {

constexpr const char* kPipelineIndex = "model_index.json";
constexpr const char* kUnetWeights = "unet/diffusion_pytorch_model.safetensors";

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool is_weights(const ModelFile& file) { return engine::has_weights_extension(file.path); }

// "safetensors", or for a PyTorch checkpoint (already accepted by the weights reader) its layout.
std::string single_file_format(const std::string& path) {
  if (!engine::has_pickle_extension(path)) return "safetensors";
  return std::string(engine::weights_format_name(engine::TensorFile::open(path).format()));
}

}  // namespace

std::string ModelLayout::kind_dir(const std::string& kind) const {
  return (fs::path(root_) / kind).string();
}
std::string ModelLayout::model_dir(const std::string& kind, const std::string& id) const {
  return (fs::path(root_) / kind / id).string();
}
std::string ModelLayout::staging_dir(const std::string& kind, const std::string& id) const {
  return (fs::path(root_) / ".staging" / kind / id).string();
}
std::string ModelLayout::quarantine_dir(const std::string& kind, const std::string& id) const {
  return (fs::path(root_) / ".quarantine" / kind / id).string();
}

std::string model_id(const Release& release) { return release.name + "@" + release.version; }

Model describe_download(const Release& release, std::vector<ModelFile> files,
                        const std::string& model_dir, const std::string& kind_dir) {
  std::sort(files.begin(), files.end(),
            [](const ModelFile& a, const ModelFile& b) { return a.path < b.path; });
  Model model;
  model.id = model_id(release);
  model.name = release.name;
  model.kind = release.kind;
  model.family = release.family;
  model.version = release.version;
  model.source_uri = release.source_uri;
  model.revision = release.revision;
  model.extra = release.extra;
  const auto find = [&files](const std::string& path) {
    return std::find_if(files.begin(), files.end(),
                        [&path](const ModelFile& f) { return f.path == path; });
  };
  const bool diffusers = find(kPipelineIndex) != files.end();
  const auto weights_count = std::count_if(files.begin(), files.end(), is_weights);
  const auto single_weights = std::find_if(files.begin(), files.end(), is_weights);
  model.format = diffusers ? "diffusers" : "safetensors";
  if (diffusers) {
    model.local_path = model_dir;
    if (const auto unet = find(kUnetWeights); unet != files.end())
      model.checkpoint_hash = unet->sha256;
  } else if (weights_count == 1) {
    model.local_path = (fs::path(model_dir) / single_weights->path).string();
    model.checkpoint_hash = single_weights->sha256;
    model.format = single_file_format(model.local_path);
  } else {
    model.local_path = model_dir;
  }
  model.ckpt_name = fs::path(model.local_path).lexically_relative(kind_dir).generic_string();
  model.files = std::move(files);
  model.installed = true;
  model.enabled = true;
  model.created_ms = model.updated_ms = now_ms();
  return model;
}

std::optional<Model> read_descriptor(const std::string& model_dir) {
  std::ifstream in(fs::path(model_dir) / registry::kModelDescriptorFile);
  if (!in) return std::nullopt;
  const auto json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return std::nullopt;
  try {
    Model model = model_from_json(json);
    model.local_path = model.local_path == "." || model.local_path.empty()
                           ? model_dir
                           : (fs::path(model_dir) / model.local_path).string();
    return model;
  } catch (const Error&) {
    return std::nullopt;
  }
}

std::vector<std::string> check_model_files(const std::string& model_dir, const Model& model,
                                           bool rehash) {
  std::vector<std::string> problems;
  for (const auto& file : model.files) {
    const std::string path = (fs::path(model_dir) / file.path).string();
    std::error_code error;
    const auto size = fs::file_size(path, error);
    if (error) {
      problems.push_back(file.path + ": missing");
      continue;
    }
    if (static_cast<int64_t>(size) != file.size) {
      problems.push_back(file.path + ": " + std::to_string(size) + " bytes, expected " +
                         std::to_string(file.size));
      continue;
    }
    if (!rehash) continue;
    const auto digest = digest_file(path, /*with_git_blob_sha1=*/false);
    if (digest.sha256 != file.sha256) {
      problems.push_back(file.path + ": sha256 " + digest.sha256 + ", expected " + file.sha256);
    }
  }
  return problems;
}

}  // namespace df::download

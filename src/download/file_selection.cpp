// File type rules and file selection for model downloads.
#include "download/file_selection.h"

#include <fnmatch.h>

#include <algorithm>
#include <regex>
#include <set>

#include "core/error.h"

namespace df::download {
namespace {

const std::set<std::string> kSafeExtensions = {".safetensors", ".json", ".txt", ".yaml", ".yml"};
const std::set<std::string> kPickleExtensions = {".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle"};
const std::set<std::string> kSkippedComponents = {"safety_checker", "feature_extractor",
                                                  "image_encoder"};

std::string lowercase_extension(const std::string& path) {
  const auto slash = path.rfind('/');
  const auto dot = path.rfind('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string extension = path.substr(dot);
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return extension;
}

// "diffusion_pytorch_model.safetensors" and its shards "...-00001-of-00002.safetensors", not
// variants such as "diffusion_pytorch_model.fp16.safetensors".
bool is_plain_safetensors(const std::string& name) {
  static const std::regex plain(R"([^.]+(-\d{5}-of-\d{5})?\.safetensors)");
  return std::regex_match(name, plain);
}

bool is_variant_safetensors(const std::string& name) {
  return lowercase_extension(name) == ".safetensors" && !is_plain_safetensors(name);
}

// Configs and tokenizer files; of the shard indexes only the plain safetensors one.
bool is_component_config(const std::string& name) {
  const std::string extension = lowercase_extension(name);
  if (extension != ".json" && extension != ".txt") return false;
  if (name.find(".index.") == std::string::npos) return true;
  static const std::regex plain_index(R"([^.]+\.safetensors\.index\.json)");
  return std::regex_match(name, plain_index);
}

bool is_weights_file(const std::string& name) {
  const std::string extension = lowercase_extension(name);
  return extension == ".safetensors" || kPickleExtensions.contains(extension) ||
         extension == ".msgpack" || extension == ".onnx";
}

// Files directly inside `folder` (not in its subfolders), by name.
std::vector<std::string> files_in_folder(const std::string& folder,
                                         const std::vector<std::string>& repo_files) {
  std::vector<std::string> names;
  const std::string prefix = folder + "/";
  for (const auto& path : repo_files) {
    if (path.starts_with(prefix) && path.find('/', prefix.size()) == std::string::npos) {
      names.push_back(path.substr(prefix.size()));
    }
  }
  return names;
}

// The component's files to fetch; throws when its weights exist only in forms not fetched.
std::vector<std::string> component_files(const std::string& component,
                                         const std::vector<std::string>& repo_files) {
  const auto names = files_in_folder(component, repo_files);
  if (names.empty()) {
    throw Error(ErrorCode::kCorruptFile, "model_index.json names the component '" + component +
                                             "' but the repo has no " + component + "/ folder");
  }
  std::vector<std::string> selected;
  bool has_weights = false;
  bool has_plain_weights = false;
  std::vector<std::string> other_weights;
  for (const auto& name : names) {
    if (is_plain_safetensors(name)) {
      has_plain_weights = true;
      selected.push_back(component + "/" + name);
    } else if (is_component_config(name)) {
      selected.push_back(component + "/" + name);
    } else if (is_weights_file(name)) {
      other_weights.push_back(name);
    }
    has_weights = has_weights || is_weights_file(name);
  }
  if (has_weights && !has_plain_weights) {
    const bool variants_only =
        std::any_of(other_weights.begin(), other_weights.end(), is_variant_safetensors);
    if (variants_only) {
      throw Error(ErrorCode::kUnsupported,
                  "the component '" + component + "' has only variant safetensors weights (" +
                      other_weights.front() + "); name the files to fetch with #glob, e.g. #" +
                      component + "/*");
    }
    throw Error(ErrorCode::kUnsafeFormat,
                "the component '" + component + "' has no safetensors weights, only " +
                    other_weights.front() +
                    "; Dream Forge downloads safetensors only (pickle files can run code)");
  }
  return selected;
}

bool has_glob_characters(const std::string& selector) {
  return selector.find_first_of("*?[") != std::string::npos;
}

}  // namespace

bool is_safe_file_type(const std::string& path) {
  return kSafeExtensions.contains(lowercase_extension(path));
}

void check_safe_file_type(const std::string& path) {
  if (is_safe_file_type(path)) return;
  if (kPickleExtensions.contains(lowercase_extension(path))) {
    throw Error(ErrorCode::kUnsafeFormat,
                "refusing '" + path +
                    "': pickle files can run code when loaded; Dream Forge downloads safetensors "
                    "weights only (look for a .safetensors version)",
                {{"file", path}});
  }
  throw Error(ErrorCode::kUnsafeFormat,
              "refusing '" + path +
                  "': not a file type Dream Forge downloads (.safetensors weights, "
                  ".json/.yaml/.txt configs and tokenizer files)",
              {{"file", path}});
}

std::vector<std::string> select_pipeline_files(const nlohmann::json& model_index,
                                               const std::vector<std::string>& repo_files) {
  if (!model_index.is_object() || !model_index.contains("_class_name")) {
    throw Error(ErrorCode::kCorruptFile, "model_index.json is not a diffusers pipeline index");
  }
  std::vector<std::string> selected = {"model_index.json"};
  for (const auto& [component, entry] : model_index.items()) {
    if (component.starts_with("_") || kSkippedComponents.contains(component)) continue;
    const bool names_a_class =
        entry.is_array() && entry.size() == 2 && entry[0].is_string() && entry[1].is_string();
    if (!names_a_class) continue;  // options such as requires_safety_checker, absent components
    if (component.find('/') != std::string::npos || component.starts_with(".")) {
      throw Error(ErrorCode::kCorruptFile,
                  "model_index.json names a bad component '" + component + "'");
    }
    const auto files = component_files(component, repo_files);
    selected.insert(selected.end(), files.begin(), files.end());
  }
  std::sort(selected.begin(), selected.end());
  return selected;
}

std::vector<std::string> select_matching_files(const std::string& selector,
                                               const std::vector<std::string>& repo_files) {
  std::vector<std::string> selected;
  for (const auto& path : repo_files) {
    const bool matches = has_glob_characters(selector)
                             ? ::fnmatch(selector.c_str(), path.c_str(), FNM_PATHNAME) == 0
                             : path == selector;
    if (matches) selected.push_back(path);
  }
  if (selected.empty()) {
    throw Error(ErrorCode::kNotFound, has_glob_characters(selector)
                                          ? "no file in the repo matches '" + selector + "'"
                                          : "the repo has no file '" + selector + "'");
  }
  std::sort(selected.begin(), selected.end());
  return selected;
}

}  // namespace df::download

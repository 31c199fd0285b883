// File type rules and file selection for model downloads.
#include "download/file_selection.h"

#include <fnmatch.h>

#include <algorithm>
#include <iterator>
#include <optional>
#include <regex>
#include <set>

#include "core/error.h"

namespace df::download {
namespace {

// Weights the engine reads (pickles only after the weights reader accepts the downloaded bytes)
// and configs.
const std::set<std::string> kFetchedExtensions = {".safetensors", ".sft", ".ckpt", ".pt", ".pth",
                                                  ".bin",         ".pkl", ".json", ".txt", ".yaml",
                                                  ".yml"};
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

// "diffusion_pytorch_model<extension>" and its shards "...-00001-of-00002<extension>", not
// variants such as "diffusion_pytorch_model.fp16<extension>".
bool is_plain_weights(const std::string& name, const std::string& extension) {
  static const std::regex plain(R"(([^.]+(-\d{5}-of-\d{5})?)(\.[a-z]+))");
  std::smatch match;
  return std::regex_match(name, match, plain) && match[3] == extension;
}

// Configs and tokenizer files; of the shard indexes only the one of the plain weights fetched.
bool is_component_config(const std::string& name, const std::string& weights_extension) {
  const std::string extension = lowercase_extension(name);
  if (extension != ".json" && extension != ".txt") return false;
  if (name.find(".index.") == std::string::npos) return true;
  return name.substr(name.find('.')) == weights_extension + ".index.json";
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

// The extension and names of the component's plain weights: safetensors, else PyTorch .bin.
std::optional<std::pair<std::string, std::vector<std::string>>> plain_weights(
    const std::vector<std::string>& names) {
  for (const char* extension : {".safetensors", ".bin"}) {
    std::vector<std::string> weights;
    std::copy_if(names.begin(), names.end(), std::back_inserter(weights),
                 [&](const std::string& name) { return is_plain_weights(name, extension); });
    if (!weights.empty()) return std::pair(std::string(extension), weights);
  }
  return std::nullopt;
}

// The component's files to fetch: its plain safetensors weights, else its plain PyTorch .bin
// weights (checked by the weights reader once downloaded), and its configs; throws when its
// weights exist only in forms not fetched.
std::vector<std::string> component_files(const std::string& component,
                                         const std::vector<std::string>& repo_files) {
  const auto names = files_in_folder(component, repo_files);
  if (names.empty()) {
    throw Error(ErrorCode::kCorruptFile, "model_index.json names the component '" + component +
                                             "' but the repo has no " + component + "/ folder");
  }
  const auto weights = plain_weights(names);
  const auto other_weights = std::find_if(names.begin(), names.end(), is_weights_file);
  if (!weights && other_weights != names.end()) {
    throw Error(ErrorCode::kUnsupported,
                "the component '" + component + "' has only " + *other_weights +
                    " and other variant or unsupported weights; name the files to fetch with "
                    "#glob, e.g. #" + component + "/*");
  }
  std::vector<std::string> selected;
  for (const auto& name : names) {
    const bool chosen = weights && std::find(weights->second.begin(), weights->second.end(),
                                             name) != weights->second.end();
    if (chosen || is_component_config(name, weights ? weights->first : ".safetensors")) {
      selected.push_back(component + "/" + name);
    }
  }
  return selected;
}

bool has_glob_characters(const std::string& selector) {
  return selector.find_first_of("*?[") != std::string::npos;
}

}  // namespace

bool is_safe_file_type(const std::string& path) {
  return kFetchedExtensions.contains(lowercase_extension(path));
}

bool is_pickle_file_type(const std::string& path) {
  return kPickleExtensions.contains(lowercase_extension(path));
}

void check_safe_file_type(const std::string& path) {
  if (is_safe_file_type(path)) return;
  throw Error(ErrorCode::kUnsafeFormat,
              "refusing '" + path +
                  "': not a file type Dream Forge downloads (weights: .safetensors, .ckpt, .pt, "
                  ".pth, .bin; .json/.yaml/.txt configs and tokenizer files)",
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

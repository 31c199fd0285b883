// Finds the graph's input files by the server's node definitions and uploads them.
#include "runner/comfy_remote/comfy_uploads.h"

#include <filesystem>
#include <map>

#include "core/files.h"

namespace df::runner {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// The options object of input `name` of `definition` (an /object_info entry); null when none.
json input_options(const json& definition, const std::string& name) {
  if (!definition.is_object() || !definition.contains("input") || !definition["input"].is_object()) return nullptr;
  for (const char* group : {"required", "optional"}) {
    const auto inputs = definition["input"].find(group);
    if (inputs == definition["input"].end() || !inputs->is_object()) continue;
    const auto spec = inputs->find(name);
    if (spec != inputs->end() && spec->is_array() && spec->size() >= 2 && (*spec)[1].is_object()) {
      return (*spec)[1];
    }
  }
  return nullptr;
}

bool takes_upload(const json& options) {
  for (const char* flag : {"image_upload", "video_upload", "audio_upload", "animated_image_upload"}) {
    if (options.value(flag, false) == true) return true;
  }
  return options.contains("upload");
}

// "sub/photo.png [input]" -> "sub/photo.png"; "" for a name that is absolute or leaves the folder.
std::string relative_name(std::string value) {
  const std::string suffix = " [input]";
  if (value.ends_with(suffix)) value.resize(value.size() - suffix.size());
  const fs::path path = fs::path(value).lexically_normal();
  if (value.empty() || path.is_absolute() || path.empty() || *path.begin() == "..") return "";
  return path.generic_string();
}

}  // namespace

std::vector<InputFile> input_files(const json& graph, const json& object_info, const std::string& input_dir) {
  std::vector<InputFile> files;
  if (!graph.is_object() || !object_info.is_object()) return files;
  for (const auto& [id, node] : graph.items()) {
    if (!node.is_object() || !node.contains("inputs") || !node["inputs"].is_object()) continue;
    const auto definition = object_info.find(node.value("class_type", ""));
    if (definition == object_info.end()) continue;
    for (const auto& [name, value] : node["inputs"].items()) {
      if (!value.is_string()) continue;
      const json options = input_options(*definition, name);
      if (!options.is_object() || !takes_upload(options)) continue;
      const std::string relative = relative_name(value.get<std::string>());
      if (relative.empty() || !fs::is_regular_file(fs::path(input_dir) / relative)) continue;
      files.push_back({id, name, relative});
    }
  }
  return files;
}

json upload_inputs(const json& graph, const std::vector<InputFile>& files, const std::string& input_dir,
                   backends::ComfyClient& client) {
  json uploaded = graph;
  std::map<std::string, std::string> stored;  // relative name -> the name the server gave it
  for (const auto& file : files) {
    auto known = stored.find(file.relative);
    if (known == stored.end()) {
      const fs::path path(file.relative);
      const std::vector<uint8_t> bytes = read_file_bytes((fs::path(input_dir) / path).string());
      const backends::ComfyFile result =
          client.upload_image(path.filename().string(), std::string(bytes.begin(), bytes.end()),
                              path.parent_path().generic_string());
      const std::string name =
          result.subfolder.empty() ? result.filename : result.subfolder + "/" + result.filename;
      known = stored.emplace(file.relative, name).first;
    }
    uploaded[file.node_id]["inputs"][file.input] = known->second;
  }
  return uploaded;
}

}  // namespace df::runner

// ComfyUI's file folders by type and its annotated file names.
#include "api/comfy_folders.h"

#include <array>

#include "core/error.h"
#include "core/files.h"

namespace df::api {

const std::filesystem::path* ComfyFolders::by_type(std::string_view type) const {
  if (type == "input") return &input;
  if (type == "output") return &output;
  if (type == "temp") return &temp;
  return nullptr;
}

bool is_comfy_folder_type(std::string_view type) {
  return type == "input" || type == "output" || type == "temp";
}

AnnotatedName split_annotated_name(std::string_view name) {
  for (std::string_view type : std::array<std::string_view, 3>{"output", "input", "temp"}) {
    const std::string suffix = " [" + std::string(type) + "]";
    if (name.ends_with(suffix)) {
      return {std::string(name.substr(0, name.size() - suffix.size())), std::string(type)};
    }
  }
  return {std::string(name), std::nullopt};
}

std::filesystem::path existing_comfy_file(const ComfyFolders& folders, const std::string& filename,
                                          const std::string& type, const std::string& subfolder,
                                          bool basename_only) {
  namespace fs = std::filesystem;
  const AnnotatedName annotated = split_annotated_name(filename);
  if (annotated.name.empty() || annotated.name.front() == '/' ||
      annotated.name.find("..") != std::string::npos) {
    throw Error(ErrorCode::kBadRequest, "invalid filename '" + filename + "'");
  }
  const std::string folder_type = annotated.type.value_or(type);
  const fs::path* folder = folders.by_type(folder_type);
  if (folder == nullptr) throw Error(ErrorCode::kBadRequest, "unknown type '" + folder_type + "'");
  fs::path directory = *folder;
  if (!subfolder.empty()) {
    try {
      directory = join_inside(folder->string(), subfolder, "subfolder");
    } catch (const Error&) {
      throw Error(ErrorCode::kForbidden, "subfolder '" + subfolder + "' is outside " + folder_type);
    }
  }
  const fs::path name = basename_only ? fs::path(annotated.name).filename() : fs::path(annotated.name);
  const fs::path file = directory / name;
  if (!fs::is_regular_file(file)) {
    throw Error(ErrorCode::kNotFound, "no file '" + annotated.name + "' in " + folder_type);
  }
  return file;
}

}  // namespace df::api

// ComfyUI's file folders by type and its annotated file names.
#include "api/comfy_folders.h"

#include <algorithm>
#include <array>

#include "core/error.h"
#include "core/files.h"
#include "image/text_encoding.h"

namespace df::api {
namespace {

constexpr size_t kMaxNameBytes = 255;  // NAME_MAX of Linux file systems

}  // namespace

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

void check_file_name_text(const std::string& name, const std::string& what) {
  if (name.empty()) throw Error(ErrorCode::kBadRequest, what + " is empty");
  if (name.find('\0') != std::string::npos) {
    throw Error(ErrorCode::kBadRequest, what + " holds a NUL character");
  }
  if (!is_valid_utf8(name)) throw Error(ErrorCode::kBadRequest, what + " is not valid UTF-8");
  size_t part_start = 0;
  while (part_start <= name.size()) {
    size_t part_end = name.find_first_of("/\\", part_start);
    if (part_end == std::string::npos) part_end = name.size();
    if (part_end - part_start > kMaxNameBytes) {
      throw Error(ErrorCode::kBadRequest, what + " has a part longer than " +
                                              std::to_string(kMaxNameBytes) + " bytes");
    }
    part_start = part_end + 1;
  }
}

std::filesystem::path existing_comfy_file(const ComfyFolders& folders, const std::string& filename,
                                          const std::string& type, const std::string& subfolder,
                                          bool basename_only) {
  namespace fs = std::filesystem;
  const AnnotatedName annotated = split_annotated_name(filename);
  check_file_name_text(filename, "filename");
  if (!subfolder.empty()) check_file_name_text(subfolder, "subfolder");
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
  std::error_code error;
  if (!fs::is_regular_file(file, error)) {
    throw Error(ErrorCode::kNotFound, "no file '" + annotated.name + "' in " + folder_type);
  }
  // A link in the folder may point anywhere: only files that really lie inside are served.
  std::error_code folder_error;
  const fs::path real_file = fs::canonical(file, error);
  const fs::path real_folder = fs::canonical(*folder, folder_error);
  const auto [folder_end, ignored] =
      std::mismatch(real_folder.begin(), real_folder.end(), real_file.begin(), real_file.end());
  if (error || folder_error || folder_end != real_folder.end()) {
    throw Error(ErrorCode::kForbidden, "'" + annotated.name + "' leads outside " + folder_type);
  }
  return file;
}

}  // namespace df::api

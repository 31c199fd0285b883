// ComfyUI's file folders by type and its annotated file names.
#include "api/comfy_folders.h"

#include <array>

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

}  // namespace df::api

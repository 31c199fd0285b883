// ComfyUI's file folders by type ("input", "output", "temp") and its annotated file names.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace df::api {

struct ComfyFolders {
  std::filesystem::path input;   // LoadImage reads here; uploads go here by default
  std::filesystem::path output;  // SaveImage writes here
  std::filesystem::path temp;    // PreviewImage writes here

  // The folder of `type`, or nullptr when it is not one of the three.
  const std::filesystem::path* by_type(std::string_view type) const;
};

// Whether `type` is "input", "output" or "temp".
bool is_comfy_folder_type(std::string_view type);

// A file name with an optional " [output]", " [input]" or " [temp]" suffix that picks its folder.
struct AnnotatedName {
  std::string name;                 // without the suffix
  std::optional<std::string> type;  // "output", "input" or "temp" when the suffix was there
};

AnnotatedName split_annotated_name(std::string_view name);

// Throws Error(kBadRequest) naming `what` unless `name` can be a file name here: not empty,
// valid UTF-8 (it must be listable as JSON), no NUL, at most 255 bytes in each part.
void check_file_name_text(const std::string& name, const std::string& what);

// An existing file of a ComfyUI folder, looked up as ComfyUI does: `filename`'s annotation picks
// the folder over `type`; `subfolder` ("" for none) must stay inside it. With `basename_only`
// (/view) only the name's last part counts; otherwise (/upload/mask's original) the name may hold
// folders of its own. Error(kBadRequest) for an empty name, one starting with '/' or holding "..",
// a name or subfolder check_file_name_text refuses, or an unknown type; Error(kForbidden) for a
// subfolder outside the folder or a file that is a link to outside it; Error(kNotFound) when there
// is no such file.
std::filesystem::path existing_comfy_file(const ComfyFolders& folders, const std::string& filename,
                                          const std::string& type, const std::string& subfolder,
                                          bool basename_only);

}  // namespace df::api

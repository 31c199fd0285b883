// Dream Forge's own SD 1.x and SDXL workflows, shipped into the user's ComfyUI workflow library.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model.h"

namespace df::api {

// A workflow of the library: its file name under "workflows/" and its API-format prompt.
struct LibraryWorkflow {
  std::string file_name;
  nlohmann::json prompt;
};

// Text-to-image and image-to-image for SD 1.x and SDXL with each family's usual settings. The
// checkpoint is the first installed model of the family (a real one before a test model), or the
// family's best-known file name when none is installed.
std::vector<LibraryWorkflow> library_workflows(const std::vector<Model>& models);

// Writes each library workflow missing from `<user_dir>/workflows/` in the frontend's format, so
// the frontend lists it; files already there (perhaps edited by the user) are left alone. Returns
// the names written.
std::vector<std::string> install_workflow_library(const std::filesystem::path& user_dir,
                                                  const std::vector<Model>& models);

}  // namespace df::api

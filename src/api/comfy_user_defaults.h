// The files a fresh ComfyUI user folder holds, so the web frontend finds them instead of 404s.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace df::api {

// Creates, when absent, what the frontend reads at boot from `user_dir`: the user stylesheet
// (user.css, empty), the saved node templates (comfy.templates.json, []), the workflow bookmarks
// (workflows/.index.json, no favorites), the subgraphs folder, and settings that keep the frontend
// from asking comfy.org for ComfyUI releases. Existing files are left alone.
// Returns the paths created, relative to `user_dir`.
std::vector<std::string> install_user_defaults(const std::filesystem::path& user_dir);

}  // namespace df::api

// The files a fresh ComfyUI user folder holds, so the web frontend finds them instead of 404s.
#include "api/comfy_user_defaults.h"

#include <system_error>

#include "core/error.h"
#include "core/files.h"

namespace df::api {
namespace {

namespace fs = std::filesystem;

struct DefaultFile {
  const char* path;  // relative to the user folder
  const char* text;
};

constexpr DefaultFile kDefaultFiles[] = {
    {"user.css", ""},
    {"comfy.templates.json", "[]"},
    {"workflows/.index.json", "{\"favorites\": []}"},
    // A self-hosted service does not ask comfy.org for ComfyUI releases unless the user wants it.
    {"comfy.settings.json", "{\"Comfy.Notification.ShowVersionUpdates\": false}"},
};

constexpr const char* kDefaultFolders[] = {"subgraphs", "workflows"};

void create_folder(const fs::path& folder) {
  std::error_code error;
  fs::create_directories(folder, error);
  if (error) {
    throw Error(ErrorCode::kInternal, "cannot create " + folder.string() + ": " + error.message());
  }
}

}  // namespace

std::vector<std::string> install_user_defaults(const fs::path& user_dir) {
  std::vector<std::string> created;
  for (const char* folder : kDefaultFolders) {
    if (fs::exists(user_dir / folder)) continue;
    create_folder(user_dir / folder);
    created.push_back(folder);
  }
  for (const auto& file : kDefaultFiles) {
    const fs::path path = user_dir / file.path;
    if (fs::exists(path)) continue;
    create_folder(path.parent_path());
    const std::string text = file.text;
    write_file_atomically(path.string(), std::vector<uint8_t>(text.begin(), text.end()));
    created.push_back(file.path);
  }
  return created;
}

}  // namespace df::api

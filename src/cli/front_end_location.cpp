// Finds the ComfyUI web frontend installed beside this build.
#include "cli/front_end_location.h"

#include <filesystem>

namespace df::cli {

namespace fs = std::filesystem;

std::string installed_front_end_root() {
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  if (error) return "";
  // build/bin/dreamforge -> <repo>/.venv/lib/python3.X/site-packages/comfyui_frontend_package/static
  const fs::path lib = self.parent_path().parent_path().parent_path() / ".venv" / "lib";
  for (const auto& python : fs::directory_iterator(lib, error)) {
    const fs::path index = python.path() / "site-packages" / "comfyui_frontend_package" / "static" / "index.html";
    if (fs::is_regular_file(index)) return index.parent_path().string();
  }
  return "";
}

}  // namespace df::cli

// ComfyUI's save-path rule: subfolders inside the output root, size variables, the next counter.
#include "nodes/save_paths.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "core/files.h"

namespace df::nodes {
namespace {

namespace fs = std::filesystem;

std::string substitute_size(std::string text, int width, int height) {
  auto replace_all = [&text](const std::string& key, const std::string& value) {
    for (size_t at = text.find(key); at != std::string::npos;
         at = text.find(key, at + value.size())) {
      text.replace(at, key.size(), value);
    }
  };
  replace_all("%width%", std::to_string(width));
  replace_all("%height%", std::to_string(height));
  return text;
}

// One more than the highest counter of the "<base>_<digits>..." files in `folder` (at least 1).
int next_counter(const fs::path& folder, const std::string& base) {
  int counter = 1;
  const std::string head = base + "_";
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(head, 0) != 0) continue;
    const std::string rest = name.substr(head.size());
    const size_t digits = rest.find_first_not_of("0123456789");
    if (digits == 0 || digits == std::string::npos || digits > 9) continue;
    counter = std::max(counter, std::stoi(rest.substr(0, digits)) + 1);
  }
  return counter;
}

}  // namespace

SaveTarget save_target(const std::string& root, const std::string& prefix, int width, int height) {
  const fs::path relative(substitute_size(prefix, width, height));
  SaveTarget target;
  target.base = relative.filename().string();
  if (target.base.empty()) throw Error(ErrorCode::kInvalidArgument, "filename_prefix names no file");
  target.subfolder = relative.parent_path().generic_string();
  target.folder = join_inside(root, target.subfolder.empty() ? "." : target.subfolder,
                              "filename_prefix");
  fs::create_directories(target.folder);
  target.counter = next_counter(target.folder, target.base);
  return target;
}

std::string numbered_file_name(const SaveTarget& target, int counter, const std::string& extension) {
  char number[32];
  std::snprintf(number, sizeof number, "_%05d_.", counter);
  return target.base + number + extension;
}

}  // namespace df::nodes

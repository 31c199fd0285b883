// Embedding file search: the named folders and their subfolders, the name with or without extension.
#include "engine/embedding_files.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

namespace df::engine {
namespace {

namespace fs = std::filesystem;

// `dir` followed by every folder below it, sorted; nothing when `dir` is not a folder.
std::vector<fs::path> folder_and_subfolders(const fs::path& dir) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) return {};
  std::vector<fs::path> below;
  const auto options =
      fs::directory_options::follow_directory_symlink | fs::directory_options::skip_permission_denied;
  for (fs::recursive_directory_iterator it(dir, options, error), end; !error && it != end;
       it.increment(error)) {
    if (it->is_directory(error)) below.push_back(it->path());
  }
  std::sort(below.begin(), below.end());
  below.insert(below.begin(), dir);
  return below;
}

// `dir / name` when it stays inside `dir` (lexically, like Python's os.path.abspath).
std::optional<fs::path> path_inside(const fs::path& dir, const std::string& name) {
  const fs::path base = fs::absolute(dir).lexically_normal();
  const fs::path joined = (base / name).lexically_normal();
  const fs::path relative = joined.lexically_relative(base);
  if (relative.empty() || *relative.begin() == "..") return std::nullopt;
  return joined;
}

bool is_file(const fs::path& path) {
  std::error_code error;
  return fs::is_regular_file(path, error);
}

std::optional<fs::path> find_in_folder(const fs::path& dir, const std::string& name) {
  const auto path = path_inside(dir, name);
  if (!path) return std::nullopt;
  if (is_file(*path)) return path;
  for (const char* extension : {".safetensors", ".pt", ".bin"}) {
    fs::path candidate = *path;
    candidate += extension;
    if (is_file(candidate)) return candidate;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> find_embedding_file(const std::vector<std::string>& dirs,
                                               const std::string& name) {
  if (name.empty()) return std::nullopt;
  for (const std::string& root : dirs) {
    for (const fs::path& dir : folder_and_subfolders(root)) {
      if (auto found = find_in_folder(dir, name)) return found->string();
    }
  }
  return std::nullopt;
}

}  // namespace df::engine

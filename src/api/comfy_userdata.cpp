// ComfyUI's user data of the single user: GET /users and the /userdata file routes.
#include "api/comfy_userdata.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "api/comfy_file_headers.h"
#include "api/comfy_router.h"
#include "api/comfy_userdata_paths.h"
#include "core/error.h"
#include "core/files.h"
#include "http/json_text.h"

namespace df::api {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kDefaultUser = "default";

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string query_value(const http::Request& request, const std::string& name,
                        const std::string& fallback = "") {
  const auto found = request.query.find(name);
  return found == request.query.end() ? fallback : found->second;
}

// ComfyUI's boolean query flags: true only when the value is "true" in any case.
bool query_flag(const http::Request& request, const std::string& name) {
  return lower(query_value(request, name)) == "true";
}

// ComfyUI's overwrite flag: anything but "false" (also when absent) allows overwriting.
bool may_overwrite(const http::Request& request) {
  return query_value(request, "overwrite", "true") != "false";
}

struct FileStat {
  int64_t size = 0;
  int64_t modified_ns = 0;
  int64_t changed_ns = 0;
};

FileStat stat_file(const fs::path& path) {
  struct stat info{};
  if (::stat(path.c_str(), &info) != 0) {
    throw Error(ErrorCode::kIo, "cannot read the file information of '" + path.string() + "'");
  }
  auto nanoseconds = [](const timespec& time) {
    return static_cast<int64_t>(time.tv_sec) * 1'000'000'000 + time.tv_nsec;
  };
  return {static_cast<int64_t>(info.st_size), nanoseconds(info.st_mtim), nanoseconds(info.st_ctim)};
}

// ComfyUI's file info: the path relative to `base`, the size, and times in whole milliseconds.
json file_info(const fs::path& path, const fs::path& base) {
  const FileStat stat = stat_file(path);
  return {{"path", user_relative_path(base, path)},
          {"size", stat.size},
          {"modified", stat.modified_ns / 1'000'000},
          {"created", stat.changed_ns / 1'000'000}};
}

bool is_hidden(const fs::path& path) { return path.filename().string().starts_with('.'); }

// The regular files below `dir` (one level, or all with `recurse`) as a glob "*" sees them: names
// starting with '.' are skipped, also as folders. Sorted, so listings are stable.
std::vector<fs::path> visible_files(const fs::path& dir, bool recurse) {
  std::vector<fs::path> files;
  std::error_code error;
  for (auto it = fs::recursive_directory_iterator(dir, error);
       !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (!recurse || is_hidden(it->path())) it.disable_recursion_pending();
    if (!is_hidden(it->path()) && fs::is_regular_file(it->path())) files.push_back(it->path());
  }
  if (error) throw Error(ErrorCode::kIo, "cannot list '" + dir.string() + "': " + error.message());
  std::sort(files.begin(), files.end());
  return files;
}

// One entry of GET /v2/userdata.
json tree_entry(const fs::path& path, const fs::path& root) {
  json entry = {{"name", path.filename().string()}, {"path", user_relative_path(root, path)}};
  if (fs::is_directory(path)) {
    entry["type"] = "directory";
  } else {
    const FileStat stat = stat_file(path);
    entry["type"] = "file";
    entry["size"] = stat.size;
    entry["modified"] = static_cast<double>(stat.modified_ns) / 1e9;
  }
  return entry;
}

// ComfyUI's answer when a file cannot be written under the name asked for.
[[noreturn]] void throw_invalid_filename() {
  throw Error(ErrorCode::kBadRequest,
              "Invalid filename. Please avoid special characters like :\\/*?\"<>|");
}

}  // namespace

ComfyUserData::ComfyUserData(fs::path user_dir)
    : root_(fs::weakly_canonical(fs::absolute(user_dir))) {}

void ComfyUserData::register_routes(http::Router& router) {
  add_comfy_route(router, "GET", "/users", [this](http::Request&) { return users(); });
  // The frontend's page links the user's stylesheet at the root too.
  router.add("GET", "/user.css", [this](http::Request&) { return user_stylesheet(); });
  add_comfy_route(router, "POST", "/users", &ComfyUserData::add_user);
  add_comfy_route(router, "GET", "/userdata",
                  with_plain_errors([this](http::Request& request) { return list(request); }));
  add_comfy_route(router, "GET", "/v2/userdata",
                  with_plain_errors([this](http::Request& request) { return list_tree(request); }));
  add_comfy_route(router, "GET", "/userdata/{file...}",
                  with_plain_errors([this](http::Request& request) { return read(request); }));
  add_comfy_route(
      router, "POST", "/userdata/{file...}",
      with_plain_errors([this](http::Request& request) { return write_or_move(request); }));
  add_comfy_route(router, "DELETE", "/userdata/{file...}",
                  with_plain_errors([this](http::Request& request) { return remove(request); }));
}

http::Response ComfyUserData::users() const {
  return http::Response::json(200, {{"storage", "server"}, {"migrated", fs::exists(root_)}});
}

http::Response ComfyUserData::add_user(const http::Request& request) {
  auto refuse = [](const std::string& message) {
    return http::Response::json(400, {{"error", message}});
  };
  const json body = http::parse_json_text_or_discarded(request.body);
  if (!body.is_object() || !body.contains("username") || !body["username"].is_string()) {
    return refuse("the body must be a JSON object with a string \"username\"");
  }
  std::string name = body["username"].get<std::string>();
  name.erase(0, name.find_first_not_of(" \t\r\n"));
  name.erase(name.find_last_not_of(" \t\r\n") + 1);
  if (name.empty()) return refuse("username not provided");
  if (body["username"] == kDefaultUser) return refuse("Duplicate username.");
  return refuse("Dream Forge serves a single user (\"default\"); other users cannot be created");
}

http::Response ComfyUserData::list(const http::Request& request) const {
  const std::string dir = query_value(request, "dir");
  if (dir.empty()) throw Error(ErrorCode::kBadRequest, "Directory not provided");
  const std::optional<fs::path> path = user_path_inside(root_, dir);
  if (!path) throw Error(ErrorCode::kForbidden, "Invalid directory");
  if (!fs::exists(*path)) throw Error(ErrorCode::kNotFound, "Directory not found");
  const bool full_info = query_flag(request, "full_info");
  const bool split = query_flag(request, "split");
  json results = json::array();
  if (!fs::is_directory(*path)) return http::Response::json(200, results);
  for (const fs::path& file : visible_files(*path, query_flag(request, "recurse"))) {
    if (full_info) {
      results.push_back(file_info(file, *path));
      continue;
    }
    const std::string relative = user_relative_path(*path, file);
    if (!split) {
      results.push_back(relative);
      continue;
    }
    json pieces = json::array({relative});
    for (const fs::path& piece : fs::path(relative)) pieces.push_back(piece.string());
    results.push_back(pieces);
  }
  return http::Response::json(200, results);
}

http::Response ComfyUserData::list_tree(const http::Request& request) const {
  const std::string requested = query_value(request, "path");
  const std::optional<fs::path> target =
      requested.empty() ? std::optional(root_) : user_path_inside(root_, requested);
  if (!target) throw Error(ErrorCode::kBadRequest, "Invalid path requested");
  if (!fs::exists(*target)) {
    if (*target == root_) return http::Response::json(200, json::array());
    throw Error(ErrorCode::kNotFound, "Requested path not found");
  }
  if (!fs::is_directory(*target)) {
    throw Error(ErrorCode::kBadRequest, "Requested path is not a directory");
  }
  std::vector<json> entries;
  std::error_code error;
  for (auto it = fs::recursive_directory_iterator(*target, error);
       !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    entries.push_back(tree_entry(it->path(), root_));
  }
  if (error) throw Error(ErrorCode::kIo, "Error reading directory contents");
  // Folders first, then files, each by name ignoring case (ComfyUI's order).
  std::stable_sort(entries.begin(), entries.end(), [](const json& a, const json& b) {
    const bool a_file = a["type"] != "directory";
    const bool b_file = b["type"] != "directory";
    if (a_file != b_file) return b_file;
    return lower(a["name"].get<std::string>()) < lower(b["name"].get<std::string>());
  });
  return http::Response::json(200, entries);
}

http::Response ComfyUserData::user_stylesheet() const {
  const fs::path path = root_ / "user.css";
  if (!fs::is_regular_file(path)) throw Error(ErrorCode::kNotFound, "File not found");
  const std::vector<uint8_t> bytes = read_file_bytes(path.string());
  return http::Response::text(200, std::string(bytes.begin(), bytes.end()), "text/css");
}

http::Response ComfyUserData::read(const http::Request& request) const {
  const fs::path path = path_of(parse_userdata_target(request.target, false).file);
  if (!fs::is_regular_file(path)) throw Error(ErrorCode::kNotFound, "File not found");
  const std::vector<uint8_t> bytes = read_file_bytes(path.string());
  // User data is whatever a client stored: never rendered inline (only the user's own user.css).
  const bool user_css = path == root_ / "user.css";
  http::Response response =
      http::Response::text(200, std::string(bytes.begin(), bytes.end()),
                           user_css ? "text/css" : served_content_type(path.filename().string()));
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  response.headers.emplace_back("Content-Disposition", user_css ? "inline" : "attachment");
  return response;
}

http::Response ComfyUserData::write_or_move(const http::Request& request) {
  const UserDataTarget target = parse_userdata_target(request.target, true);
  const fs::path source = path_of(target.file);
  if (target.move_to) return move(source, path_of(*target.move_to), request);
  return write(source, request);
}

http::Response ComfyUserData::write(const fs::path& path, const http::Request& request) {
  std::lock_guard lock(write_mutex_);
  if (!may_overwrite(request) && fs::exists(path)) {
    throw Error(ErrorCode::kConflict, "File already exists");
  }
  try {
    fs::create_directories(path.parent_path());
    write_file_atomically(path.string(),
                          std::vector<uint8_t>(request.body.begin(), request.body.end()));
  } catch (const Error&) {
    throw_invalid_filename();
  } catch (const fs::filesystem_error&) {
    throw_invalid_filename();
  }
  return saved(path, request);
}

http::Response ComfyUserData::move(const fs::path& source, const fs::path& dest,
                                   const http::Request& request) {
  std::lock_guard lock(write_mutex_);
  if (!fs::is_regular_file(source)) throw Error(ErrorCode::kNotFound, "File not found");
  if (!may_overwrite(request) && fs::exists(dest)) {
    throw Error(ErrorCode::kConflict, "File already exists");
  }
  try {
    fs::create_directories(dest.parent_path());
    fs::rename(source, dest);
  } catch (const fs::filesystem_error&) {
    throw_invalid_filename();
  }
  return saved(dest, request);
}

http::Response ComfyUserData::remove(const http::Request& request) {
  const fs::path path = path_of(parse_userdata_target(request.target, false).file);
  std::lock_guard lock(write_mutex_);
  if (!fs::is_regular_file(path)) throw Error(ErrorCode::kNotFound, "File not found");
  std::error_code error;
  if (!fs::remove(path, error) || error) {
    throw Error(ErrorCode::kIo, "cannot delete '" + user_relative_path(root_, path) + "'");
  }
  return http::Response::text(204, "");
}

fs::path ComfyUserData::path_of(const std::string& name) const {
  if (name.empty()) throw Error(ErrorCode::kBadRequest, "File name not provided");
  std::optional<fs::path> path = user_path_inside(root_, name);
  if (!path) throw Error(ErrorCode::kForbidden, "Invalid file path");
  return *path;
}

http::Response ComfyUserData::saved(const fs::path& path, const http::Request& request) const {
  if (query_flag(request, "full_info")) return http::Response::json(200, file_info(path, root_));
  return http::Response::json(200, user_relative_path(root_, path));
}

}  // namespace df::api

// Files of a web frontend served from a directory: content types, index.html, no way out of root.
#include "http/static_files.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include <boost/algorithm/string/case_conv.hpp>

#include "core/error.h"
#include "core/files.h"

namespace df::http {
namespace {

namespace fs = std::filesystem;

struct ExtensionType {
  std::string_view extension;  // lower case, with the dot
  std::string_view content_type;
  bool revalidate;  // sent with "Cache-Control: no-cache"
};

constexpr std::array<ExtensionType, 19> kExtensionTypes{{
    {".html", "text/html; charset=utf-8", true},
    {".htm", "text/html; charset=utf-8", true},
    {".js", "application/javascript", true},
    {".mjs", "application/javascript", true},
    {".css", "text/css", true},
    {".json", "application/json", false},
    {".map", "application/json", false},
    {".svg", "image/svg+xml", false},
    {".png", "image/png", false},
    {".jpg", "image/jpeg", false},
    {".jpeg", "image/jpeg", false},
    {".webp", "image/webp", false},
    {".ico", "image/x-icon", false},
    {".woff", "font/woff", false},
    {".woff2", "font/woff2", false},
    {".ttf", "font/ttf", false},
    {".wasm", "application/wasm", false},
    {".txt", "text/plain; charset=utf-8", false},
    {".gif", "image/gif", false},
}};

const ExtensionType* find_extension_type(std::string_view file_name) {
  std::string extension = boost::algorithm::to_lower_copy(fs::path(file_name).extension().string());
  auto found = std::find_if(kExtensionTypes.begin(), kExtensionTypes.end(),
                            [&](const ExtensionType& type) { return type.extension == extension; });
  return found == kExtensionTypes.end() ? nullptr : &*found;
}

Error not_found(const std::string& relative_path) {
  return Error(ErrorCode::kNotFound, "no file '" + relative_path + "' in the web frontend");
}

// `relative_path` below root, refusing one that leaves it (also through symlinks).
std::string inside_root(const std::string& root, const std::string& relative_path) {
  try {
    return join_inside(root, relative_path, "path");
  } catch (const Error&) {
    throw Error(ErrorCode::kForbidden, "the path '" + relative_path + "' leaves the web frontend");
  } catch (const fs::filesystem_error&) {
    throw not_found(relative_path);  // a name the filesystem refuses (too long, no access)
  }
}

// The absolute path of the file to serve: inside root, a regular file, index.html for a directory.
std::string resolve_file(const std::string& root, const std::string& relative_path) {
  if (relative_path.find('\0') != std::string::npos) throw not_found(relative_path);
  std::string full = inside_root(root, relative_path);
  std::error_code ec;
  if (fs::is_directory(full, ec)) {
    full = inside_root(root, (fs::path(relative_path) / "index.html").string());
  }
  if (!fs::is_regular_file(full, ec)) throw not_found(relative_path);
  return full;
}

}  // namespace

std::string content_type_for(std::string_view file_name) {
  const ExtensionType* type = find_extension_type(file_name);
  return std::string(type ? type->content_type : "application/octet-stream");
}

Response static_file_response(const std::string& root, const std::string& relative_path) {
  std::string file = resolve_file(root, relative_path);
  std::vector<uint8_t> bytes = read_file_bytes(file);
  Response response = Response::text(200, std::string(bytes.begin(), bytes.end()),
                                     content_type_for(file));
  const ExtensionType* type = find_extension_type(file);
  if (type && type->revalidate) response.headers.emplace_back("Cache-Control", "no-cache");
  return response;
}

}  // namespace df::http

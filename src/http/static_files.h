// Files of a web frontend served from a directory: content types, index.html, no way out of root.
#pragma once

#include <string>
#include <string_view>

#include "http/message.h"

namespace df::http {

// The Content-Type for a file name, by its extension (case-insensitive);
// "application/octet-stream" for extensions it does not know.
std::string content_type_for(std::string_view file_name);

// The file at `relative_path` below `root` as a 200 response with its content type; HTML,
// JavaScript and CSS with "Cache-Control: no-cache" so a new frontend version shows at once.
// `relative_path` is already percent-decoded (as the router's path parameters are); "" or a
// directory means its index.html. Throws Error(kForbidden) for a path that leaves `root` (also
// through symlinks), Error(kNotFound) for a missing file or a directory without index.html, and
// Error(kIo) when the file cannot be read. Never lists directories.
Response static_file_response(const std::string& root, const std::string& relative_path);

}  // namespace df::http

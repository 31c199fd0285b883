// Headers of files served to ComfyUI clients: content types that cannot run as active content,
// and Content-Disposition values that cannot break the header.
#pragma once

#include <string>
#include <string_view>

namespace df::api {

// The Content-Type for `file_name` by its extension, with types a browser would run or render as
// active content (HTML, XHTML, JavaScript, CSS, SVG) replaced by application/octet-stream.
std::string served_content_type(std::string_view file_name);

// `disposition` ("attachment", "inline" or "") followed by `filename="<name>"`, the name stripped
// of control characters and with '"' and '\' escaped: e.g. `filename="a.png"`.
std::string content_disposition(std::string_view disposition, std::string_view file_name);

}  // namespace df::api

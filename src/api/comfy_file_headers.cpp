// Headers of files served to ComfyUI clients: safe content types and Content-Disposition values.
#include "api/comfy_file_headers.h"

#include <algorithm>
#include <array>

#include "http/static_files.h"

namespace df::api {

std::string served_content_type(std::string_view file_name) {
  static constexpr std::array<std::string_view, 6> kActiveContent = {
      "text/html", "application/xhtml+xml", "text/javascript", "application/javascript",
      "text/css",  "image/svg+xml"};
  std::string type = http::content_type_for(file_name);
  const std::string_view base = std::string_view(type).substr(0, type.find(';'));
  if (std::find(kActiveContent.begin(), kActiveContent.end(), base) != kActiveContent.end()) {
    return "application/octet-stream";
  }
  return type;
}

std::string content_disposition(std::string_view disposition, std::string_view file_name) {
  std::string value(disposition);
  if (!value.empty()) value += "; ";
  value += "filename=\"";
  for (char c : file_name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) continue;
    if (c == '"' || c == '\\') value += '\\';
    value += c;
  }
  return value + "\"";
}

}  // namespace df::api

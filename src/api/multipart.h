// A strict parser of multipart/form-data request bodies (RFC 7578): the parts with their fields.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace df::api {

struct MultipartPart {
  std::string name;                     // the form field name
  std::optional<std::string> filename;  // set for file parts (may be "" when none was chosen)
  std::string content_type;             // "text/plain" when the part declares none
  std::string body;                     // the raw bytes
};

// The boundary of a "multipart/form-data; boundary=..." Content-Type value (quoted or not).
// Throws Error(kBadRequest) when the type is not multipart/form-data or the boundary is missing
// or malformed (1-70 characters, RFC 2046).
std::string multipart_boundary(std::string_view content_type);

// The parts of `body`, in order. Throws Error(kBadRequest) for a body that is not well-formed:
// no opening or closing delimiter, a part without headers or without a Content-Disposition of
// form-data with a name, or header lines that are not "Name: value".
std::vector<MultipartPart> parse_multipart(std::string_view body, std::string_view boundary);

// The first part called `name`, or nullptr.
const MultipartPart* find_part(const std::vector<MultipartPart>& parts, std::string_view name);

}  // namespace df::api

// A strict parser of multipart/form-data request bodies (RFC 7578): the parts with their fields.
#include "api/multipart.h"

#include <algorithm>
#include <boost/algorithm/string/case_conv.hpp>
#include <boost/algorithm/string/predicate.hpp>
#include <utility>

#include "core/error.h"

namespace df::api {
namespace {

constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kWhitespace = " \t";

[[noreturn]] void throw_malformed(const std::string& why) {
  throw Error(ErrorCode::kBadRequest, "the multipart/form-data body is malformed: " + why);
}

std::string_view trim(std::string_view text) {
  const std::size_t first = text.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) return {};
  const std::size_t last = text.find_last_not_of(kWhitespace);
  return text.substr(first, last - first + 1);
}

[[noreturn]] void throw_bad_header(std::string_view header, const std::string& why) {
  throw Error(ErrorCode::kBadRequest,
              "the " + std::string(header) + " header is malformed: " + why);
}

// Parameters of a header value after its first token: `; key=value; key="quoted \" value"`.
// Keys come back lower-cased. Throws Error(kBadRequest) naming `header` when malformed.
std::vector<std::pair<std::string, std::string>> parse_parameters(std::string_view text,
                                                                  std::string_view header) {
  std::vector<std::pair<std::string, std::string>> parameters;
  std::size_t at = 0;
  while (true) {
    at = text.find_first_not_of(kWhitespace, at);
    if (at == std::string_view::npos) return parameters;
    if (text[at] != ';') throw_bad_header(header, "expected ';' before a parameter");
    at = text.find_first_not_of(kWhitespace, at + 1);
    if (at == std::string_view::npos) return parameters;  // a trailing ';'
    const std::size_t equals = text.find('=', at);
    if (equals == std::string_view::npos) throw_bad_header(header, "a parameter has no value");
    std::string key =
        boost::algorithm::to_lower_copy(std::string(trim(text.substr(at, equals - at))));
    if (key.empty()) throw_bad_header(header, "a parameter has no name");
    at = std::min(text.find_first_not_of(kWhitespace, equals + 1), text.size());
    std::string value;
    if (at < text.size() && text[at] == '"') {
      ++at;
      while (true) {
        if (at >= text.size()) throw_bad_header(header, "a quoted value is not closed");
        const char c = text[at++];
        if (c == '"') break;
        if (c == '\\' && at < text.size()) {
          value += text[at++];
        } else {
          value += c;
        }
      }
    } else {
      const std::size_t end = std::min(text.find(';', at), text.size());
      value = std::string(trim(text.substr(at, end - at)));
      at = end;
    }
    parameters.emplace_back(std::move(key), std::move(value));
  }
}

const std::string* find_parameter(
    const std::vector<std::pair<std::string, std::string>>& parameters, std::string_view key) {
  for (const auto& [name, value] : parameters) {
    if (name == key) return &value;
  }
  return nullptr;
}

// RFC 2046 bchars: digits, letters, "'()+_,-./:=?" and space (not as the last character).
bool is_valid_boundary(std::string_view boundary) {
  if (boundary.empty() || boundary.size() > 70 || boundary.back() == ' ') return false;
  return std::all_of(boundary.begin(), boundary.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos;
  });
}

struct PartHeaders {
  std::string disposition;  // the Content-Disposition value
  std::string content_type;
};

PartHeaders parse_part_headers(std::string_view block) {
  PartHeaders headers;
  while (!block.empty()) {
    const std::size_t end = std::min(block.find(kCrlf), block.size());
    const std::string_view line = block.substr(0, end);
    block.remove_prefix(std::min(end + kCrlf.size(), block.size()));
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 || line.find_first_of(kWhitespace) < colon) {
      throw_malformed("a part header line is not 'Name: value'");
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (boost::algorithm::iequals(name, "Content-Disposition")) {
      headers.disposition = std::string(value);
    } else if (boost::algorithm::iequals(name, "Content-Type")) {
      headers.content_type = std::string(value);
    }
  }
  return headers;
}

MultipartPart make_part(const PartHeaders& headers, std::string_view body) {
  if (headers.disposition.empty()) throw_malformed("a part has no Content-Disposition header");
  const std::string_view disposition = headers.disposition;
  const std::size_t semicolon = std::min(disposition.find(';'), disposition.size());
  if (!boost::algorithm::iequals(trim(disposition.substr(0, semicolon)), "form-data")) {
    throw_malformed("a part's Content-Disposition is not form-data");
  }
  const auto parameters =
      parse_parameters(disposition.substr(semicolon), "part's Content-Disposition");
  const std::string* name = find_parameter(parameters, "name");
  if (name == nullptr) throw_malformed("a part has no name");
  MultipartPart part;
  part.name = *name;
  if (const std::string* filename = find_parameter(parameters, "filename")) {
    part.filename = *filename;
  }
  part.content_type = headers.content_type.empty() ? "text/plain" : headers.content_type;
  part.body = std::string(body);
  return part;
}

}  // namespace

std::string multipart_boundary(std::string_view content_type) {
  const std::size_t semicolon = std::min(content_type.find(';'), content_type.size());
  if (!boost::algorithm::iequals(trim(content_type.substr(0, semicolon)), "multipart/form-data")) {
    throw Error(ErrorCode::kBadRequest, "the request body must be multipart/form-data, not '" +
                                            std::string(trim(content_type.substr(0, semicolon))) +
                                            "'");
  }
  const auto parameters = parse_parameters(content_type.substr(semicolon), "Content-Type");
  const std::string* boundary = find_parameter(parameters, "boundary");
  if (boundary == nullptr || !is_valid_boundary(*boundary)) {
    throw Error(ErrorCode::kBadRequest,
                "the Content-Type header needs a boundary of 1 to 70 allowed characters");
  }
  return *boundary;
}

std::vector<MultipartPart> parse_multipart(std::string_view body, std::string_view boundary) {
  const std::string delimiter = "\r\n--" + std::string(boundary);
  // The first delimiter opens the body or follows a preamble; parsing then starts right after it.
  std::size_t at;
  if (body.substr(0, delimiter.size() - kCrlf.size()) == std::string_view(delimiter).substr(2)) {
    at = delimiter.size() - kCrlf.size();
  } else {
    const std::size_t found = body.find(delimiter);
    if (found == std::string_view::npos) throw_malformed("the boundary does not occur in the body");
    at = found + delimiter.size();
  }
  std::vector<MultipartPart> parts;
  while (true) {
    if (body.substr(at, 2) == "--") return parts;  // the close delimiter; the epilogue is ignored
    at = std::min(body.find_first_not_of(kWhitespace, at), body.size());  // transport padding
    if (body.substr(at, kCrlf.size()) != kCrlf) throw_malformed("a delimiter line does not end");
    at += kCrlf.size();
    if (body.substr(at, kCrlf.size()) == kCrlf) throw_malformed("a part has no headers");
    const std::size_t headers_end = body.find("\r\n\r\n", at);
    if (headers_end == std::string_view::npos) throw_malformed("a part's headers do not end");
    const PartHeaders headers = parse_part_headers(body.substr(at, headers_end - at));
    const std::size_t content_start = headers_end + 2 * kCrlf.size();
    const std::size_t content_end = body.find(delimiter, content_start);
    if (content_end == std::string_view::npos) throw_malformed("the closing boundary is missing");
    parts.push_back(make_part(headers, body.substr(content_start, content_end - content_start)));
    at = content_end + delimiter.size();
  }
}

const MultipartPart* find_part(const std::vector<MultipartPart>& parts, std::string_view name) {
  for (const MultipartPart& part : parts) {
    if (part.name == name) return &part;
  }
  return nullptr;
}

}  // namespace df::api

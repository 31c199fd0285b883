// Matches method + path to a handler: literal segments, "{name}" segments and a final "{name...}".
#include "http/router.h"

#include <algorithm>
#include <string_view>

#include <nlohmann/json.hpp>

namespace df::http {
namespace {

// How a pattern segment matches; lower values are more specific and win over higher ones.
enum class SegmentKind { kLiteral = 0, kParam = 1, kRest = 2 };

struct Segment {
  SegmentKind kind;
  std::string_view text;  // the literal, or the parameter's name
};

// "/a/b/" -> {"a", "b", ""}: the pieces after each '/'.
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> pieces;
  while (!path.empty()) {
    path.remove_prefix(1);  // the '/'
    std::size_t slash = path.find('/');
    pieces.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash);
  }
  return pieces;
}

std::vector<Segment> parse_pattern(std::string_view pattern) {
  std::vector<Segment> segments;
  for (std::string_view piece : split_path(pattern)) {
    if (piece.size() >= 2 && piece.front() == '{' && piece.back() == '}') {
      std::string_view name = piece.substr(1, piece.size() - 2);
      if (name.ends_with("...")) {
        segments.push_back({SegmentKind::kRest, name.substr(0, name.size() - 3)});
      } else {
        segments.push_back({SegmentKind::kParam, name});
      }
    } else {
      segments.push_back({SegmentKind::kLiteral, piece});
    }
  }
  return segments;
}

void check_pattern(std::string_view pattern) {
  if (!pattern.starts_with('/')) {
    throw Error(ErrorCode::kInvalidArgument,
                "route pattern '" + std::string(pattern) + "' must start with '/'");
  }
  std::vector<Segment> segments = parse_pattern(pattern);
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const Segment& segment = segments[i];
    bool is_last = i + 1 == segments.size();
    if (segment.kind != SegmentKind::kLiteral && segment.text.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "route pattern '" + std::string(pattern) + "' has a parameter without a name");
    }
    if (segment.kind == SegmentKind::kRest && !is_last) {
      throw Error(ErrorCode::kInvalidArgument,
                  "route pattern '" + std::string(pattern) +
                      "' may only capture the rest in its last segment");
    }
  }
}

// The segment kinds of `pattern` when it matches `path` (filling `params`), else nothing.
std::optional<std::vector<SegmentKind>> match_pattern(std::string_view pattern,
                                                      std::string_view path,
                                                      std::map<std::string, std::string>& params) {
  std::vector<Segment> segments = parse_pattern(pattern);
  std::vector<std::string_view> pieces = split_path(path);
  std::vector<SegmentKind> kinds;
  std::map<std::string, std::string> captured;
  std::size_t offset = 0;  // where pieces[i] starts in `path`, after its '/'
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const Segment& segment = segments[i];
    kinds.push_back(segment.kind);
    if (segment.kind == SegmentKind::kRest) {
      if (i >= pieces.size()) return std::nullopt;
      captured[std::string(segment.text)] = std::string(path.substr(offset + 1));
      params = std::move(captured);
      return kinds;
    }
    if (i >= pieces.size()) return std::nullopt;
    if (segment.kind == SegmentKind::kLiteral && pieces[i] != segment.text) return std::nullopt;
    if (segment.kind == SegmentKind::kParam) {
      if (pieces[i].empty()) return std::nullopt;
      captured[std::string(segment.text)] = std::string(pieces[i]);
    }
    offset += 1 + pieces[i].size();
  }
  if (segments.size() != pieces.size()) return std::nullopt;
  params = std::move(captured);
  return kinds;
}

// Whether a route of `route_method` stands in for `request_method`: GET answers HEAD (the server
// drops the body).
bool serves_as_get(std::string_view route_method, std::string_view request_method) {
  return request_method == "HEAD" && route_method == "GET";
}

}  // namespace

void Router::add(std::string method, std::string pattern, Handler handler) {
  check_pattern(pattern);
  routes_.push_back({std::move(method), std::move(pattern), std::move(handler)});
}

const Route& Router::match(Request& request) const {
  // The routes of the most specific pattern matching the path: the resource the path names.
  std::vector<std::pair<const Route*, std::map<std::string, std::string>>> owners;
  std::vector<SegmentKind> owner_kinds;
  for (const Route& route : routes_) {
    std::map<std::string, std::string> params;
    std::optional<std::vector<SegmentKind>> kinds =
        match_pattern(route.pattern, request.path, params);
    if (!kinds) continue;
    if (owners.empty() || *kinds < owner_kinds) {
      owners.clear();
      owner_kinds = std::move(*kinds);
    } else if (*kinds != owner_kinds) {
      continue;
    }
    owners.emplace_back(&route, std::move(params));
  }
  if (owners.empty()) {
    throw Error(ErrorCode::kNotFound, "no route for " + request.method + " " + request.path);
  }
  // The route of the request's own method, else a GET route serving HEAD.
  auto chosen = owners.end();
  for (auto owner = owners.begin(); owner != owners.end(); ++owner) {
    if (owner->first->method == request.method) {
      chosen = owner;
      break;
    }
    if (chosen == owners.end() && serves_as_get(owner->first->method, request.method)) {
      chosen = owner;
    }
  }
  if (chosen != owners.end()) {
    request.path_params = std::move(chosen->second);
    return *chosen->first;
  }
  std::vector<std::string> allowed;
  for (const auto& owner : owners) {
    allowed.push_back(owner.first->method);
    if (owner.first->method == "GET") allowed.push_back("HEAD");
  }
  std::sort(allowed.begin(), allowed.end());
  allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
  throw Error(ErrorCode::kMethodNotAllowed,
              "method " + request.method + " is not allowed for " + request.path,
              {{"allow", allowed}});
}

}  // namespace df::http

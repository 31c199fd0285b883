// Where a YAML configuration file's errors point ("<file>:<line>: <what>", with the file, line and
// column in the details), and its document loaded with syntax errors reported the same way.
// Header-only: its users link yaml-cpp, df_core does not.
#pragma once

#include <string>
#include <utility>

#include <yaml-cpp/yaml.h>

#include "core/error.h"

namespace df {

class YamlConfigSource {
 public:
  // `origin`: the file's path (or a name for text that has none), as errors show it.
  explicit YamlConfigSource(std::string origin) : origin_(std::move(origin)) {}

  // Throws Error(kInvalidArgument) pointing at `mark`.
  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& what) const {
    const int line = mark.line + 1;
    throw Error(ErrorCode::kInvalidArgument, origin_ + ":" + std::to_string(line) + ": " + what,
                {{"file", origin_}, {"line", line}, {"column", mark.column + 1}});
  }

  // The document of `yaml_text`; a syntax error fails at its place.
  YAML::Node load(const std::string& yaml_text) const {
    try {
      return YAML::Load(yaml_text);
    } catch (const YAML::Exception& e) {
      fail(e.mark, "YAML syntax error: " + e.msg);
    }
  }

 private:
  std::string origin_;
};

}  // namespace df

// Reads runners.yaml into RunnersConfig, failing at the first problem with its file, line, field.
#include "runner/container/runners_config.h"

#include <algorithm>
#include <map>
#include <regex>

#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "core/files.h"
#include "core/yaml_config.h"

namespace df::runner {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kKinds = {"native", "comfy"};
// The fields only isolation: container reads.
const std::vector<std::string> kContainerFields = {"engine", "image",   "gpus",
                                                   "memory", "network", "extra_args"};

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

class ConfigParser : public YamlConfigSource {
 public:
  using YamlConfigSource::YamlConfigSource;

  RunnersConfig parse(const YAML::Node& root) const {
    RunnersConfig config;
    if (root.IsNull()) return config;
    if (!root.IsMap()) fail(root.Mark(), "the runners config must be a mapping of runner kinds");
    for (const auto& [name, node] : fields(root, kKinds, "runner kind")) {
      (name == "native" ? config.native : config.comfy) = kind(node, name);
    }
    return config;
  }

 private:
  // The mapping's fields by name, each one of `allowed` and named once.
  std::map<std::string, YAML::Node> fields(const YAML::Node& node,
                                           const std::vector<std::string>& allowed,
                                           const std::string& what) const {
    std::map<std::string, YAML::Node> out;
    for (const auto& pair : node) {
      if (!pair.first.IsScalar()) fail(pair.first.Mark(), "a " + what + " is not a name");
      const std::string key = pair.first.Scalar();
      if (!contains(allowed, key)) {
        std::string expected;
        for (const auto& name : allowed) expected += (expected.empty() ? "" : ", ") + name;
        fail(pair.first.Mark(), "unknown " + what + " '" + key + "'; expected " + expected);
      }
      if (out.contains(key)) fail(pair.first.Mark(), what + " '" + key + "' appears twice");
      out[key] = pair.second;
    }
    return out;
  }

  KindIsolation kind(const YAML::Node& node, const std::string& name) const {
    KindIsolation out;
    if (node.IsNull()) return out;
    if (!node.IsMap()) fail(node.Mark(), "runner kind '" + name + "' must be a mapping of fields");
    std::vector<std::string> allowed = kContainerFields;
    allowed.push_back("isolation");
    auto given = fields(node, allowed, "field of runner kind '" + name + "'");
    const std::string what = "runner kind '" + name + "'";
    if (given.contains("isolation")) {
      const std::string value = choice(given["isolation"], what, "isolation",
                                       {"subprocess", "container"});
      out.isolation = value == "container" ? Isolation::kContainer : Isolation::kSubprocess;
    }
    if (out.isolation == Isolation::kSubprocess) {
      for (const auto& field : kContainerFields) {
        if (given.contains(field)) {
          fail(given[field].Mark(),
               what + ": field '" + field + "' applies only to isolation: container");
        }
      }
      return out;
    }
    ContainerSettings& container = out.container;
    if (!given.contains("image")) {
      fail(node.Mark(), what + " has isolation: container but no 'image'");
    }
    container.image = matching(given["image"], what, "image", "[A-Za-z0-9][A-Za-z0-9._/:@-]*",
                               "an image reference such as dreamforge-runner-cpu:latest");
    if (given.contains("engine")) container.engine = engine(given["engine"], what);
    if (given.contains("gpus")) {
      const std::string value = choice(given["gpus"], what, "gpus", {"cdi", "docker", "none"});
      container.gpus = value == "cdi"      ? GpuAccess::kCdi
                       : value == "docker" ? GpuAccess::kDocker
                                           : GpuAccess::kNone;
    }
    if (given.contains("memory")) {
      container.memory = matching(given["memory"], what, "memory", "[1-9][0-9]*[bkmgBKMG]?",
                                  "a size such as 512m or 8g");
    }
    if (given.contains("network")) {
      container.network = choice(given["network"], what, "network", {"none", "host"});
    }
    if (given.contains("extra_args")) container.extra_args = words(given["extra_args"], what);
    return out;
  }

  std::string scalar(const YAML::Node& node, const std::string& what,
                     const std::string& field) const {
    if (!node.IsScalar()) fail(node.Mark(), what + ": " + field + " must be a single value");
    return node.Scalar();
  }

  std::string choice(const YAML::Node& node, const std::string& what, const std::string& field,
                     const std::vector<std::string>& values) const {
    const std::string value = scalar(node, what, field);
    if (contains(values, value)) return value;
    std::string expected;
    for (const auto& name : values) expected += (expected.empty() ? "" : " | ") + name;
    fail(node.Mark(), what + ": " + field + " '" + value + "' must be one of " + expected);
  }

  std::string matching(const YAML::Node& node, const std::string& what, const std::string& field,
                       const std::string& pattern, const std::string& expected) const {
    const std::string value = scalar(node, what, field);
    if (!std::regex_match(value, std::regex(pattern))) {
      fail(node.Mark(), what + ": " + field + " '" + value + "' is not " + expected);
    }
    return value;
  }

  std::string engine(const YAML::Node& node, const std::string& what) const {
    const std::string value = scalar(node, what, "engine");
    if (value == "docker" || value == "podman" || fs::path(value).is_absolute()) return value;
    fail(node.Mark(), what + ": engine '" + value +
                          "' must be docker, podman or the absolute path of an engine client");
  }

  std::vector<std::string> words(const YAML::Node& node, const std::string& what) const {
    if (!node.IsSequence()) fail(node.Mark(), what + ": extra_args must be a list of strings");
    std::vector<std::string> out;
    for (const auto& word : node) {
      if (!word.IsScalar() || word.Scalar().empty()) {
        fail(word.Mark(), what + ": each of extra_args must be a non-empty string");
      }
      out.push_back(word.Scalar());
    }
    return out;
  }

};

}  // namespace

fs::path runners_config_path(const std::string& data_dir) {
  return fs::path(data_dir) / "config" / "runners.yaml";
}

RunnersConfig parse_runners_config(const std::string& yaml_text, const std::string& origin) {
  const ConfigParser parser(origin);
  return parser.parse(parser.load(yaml_text));
}

RunnersConfig load_runners_config(const fs::path& path) {
  const auto text = read_config_text(path.string(), "runners config");
  return text ? parse_runners_config(*text, path.string()) : RunnersConfig{};
}

}  // namespace df::runner

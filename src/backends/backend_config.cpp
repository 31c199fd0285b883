// Reads backends.yaml into BackendSpecs, failing at the first problem with its file, line and field.
#include "backends/backend_config.h"

#include <algorithm>
#include <map>
#include <regex>

#include <yaml-cpp/yaml.h>

#include "backends/comfy_client.h"
#include "core/error.h"
#include "core/files.h"
#include "core/yaml_config.h"
#include "core/numbers.h"
#include "http/client.h"

namespace df::backends {
namespace {

namespace fs = std::filesystem;

// The fields only a backend started by `command` has.
const std::vector<std::string> kCommandFields = {"port", "device", "memory_need_mb",
                                                 "idle_timeout_s", "start_timeout_s"};
const std::vector<std::string> kFields = {"name",           "url",           "auth_header",
                                          "command",        "port",          "device",
                                          "memory_need_mb", "idle_timeout_s", "max_instances",
                                          "start_timeout_s"};

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

class ConfigParser : public YamlConfigSource {
 public:
  using YamlConfigSource::YamlConfigSource;

  BackendConfig parse(const YAML::Node& root) {
    BackendConfig config;
    if (root.IsNull()) return config;
    if (!root.IsMap()) fail(root.Mark(), "the backends config must be a mapping with 'backends'");
    YAML::Node list;
    for (const auto& pair : root) {
      const std::string key = pair.first.IsScalar() ? pair.first.Scalar() : "";
      if (key != "backends") fail(pair.first.Mark(), "unknown field '" + key + "'; expected backends");
      list = pair.second;
    }
    if (!list || list.IsNull()) return config;
    if (!list.IsSequence()) fail(list.Mark(), "backends must be a list");
    for (const auto& entry : list) {
      BackendSpec spec = backend(entry);
      const bool duplicate =
          std::any_of(config.backends.begin(), config.backends.end(),
                      [&](const BackendSpec& other) { return other.name == spec.name; });
      if (duplicate) fail(entry["name"].Mark(), "name '" + spec.name + "' appears twice");
      config.backends.push_back(std::move(spec));
    }
    return config;
  }

 private:
  BackendSpec backend(const YAML::Node& node) const {
    if (!node.IsMap()) fail(node.Mark(), "each backend must be a mapping of fields");
    std::map<std::string, YAML::Node> fields;
    for (const auto& pair : node) {
      if (!pair.first.IsScalar()) fail(pair.first.Mark(), "a backend's field is not a name");
      const std::string key = pair.first.Scalar();
      if (!contains(kFields, key)) {
        fail(pair.first.Mark(), "unknown field '" + key + "' in a backend");
      }
      if (fields.contains(key)) fail(pair.first.Mark(), "field '" + key + "' appears twice");
      fields[key] = pair.second;
    }
    BackendSpec spec;
    if (!fields.contains("name")) fail(node.Mark(), "a backend has no 'name'");
    spec.name = scalar(fields["name"], "name");
    static const std::regex kName("[A-Za-z0-9_.-]{1,64}");
    if (!std::regex_match(spec.name, kName)) {
      fail(fields["name"].Mark(), "name '" + spec.name +
                                      "' is not valid: use 1 to 64 letters, digits, '_', '.' or '-'");
    }
    const std::string what = "backend '" + spec.name + "'";
    const bool has_url = fields.contains("url");
    const bool has_command = fields.contains("command");
    if (has_url == has_command) {
      fail(node.Mark(), what + " must have exactly one of 'url' or 'command'");
    }
    if (has_url) {
      for (const auto& field : kCommandFields) {
        if (fields.contains(field)) {
          fail(fields[field].Mark(),
               what + ": field '" + field + "' applies only to a backend with 'command'");
        }
      }
      spec.url = url(fields["url"], what);
    } else {
      spec.command = command(fields["command"], what);
      if (!fields.contains("port")) fail(node.Mark(), what + " has 'command' but no 'port'");
      spec.port = static_cast<int>(bounded(fields["port"], what, "port", 1, 65535));
    }
    if (fields.contains("auth_header")) {
      spec.auth_header = scalar(fields["auth_header"], "auth_header");
      try {
        ComfyClient check({spec.base_url(), spec.auth_header});
      } catch (const Error& e) {
        fail(fields["auth_header"].Mark(), what + ": " + e.what());
      }
    }
    if (fields.contains("device")) spec.device = device(fields["device"], what);
    if (fields.contains("memory_need_mb")) {
      spec.memory_need_bytes =
          bounded(fields["memory_need_mb"], what, "memory_need_mb", 0, 1 << 24) << 20;
    }
    if (fields.contains("idle_timeout_s")) {
      spec.idle_timeout_ms =
          bounded(fields["idle_timeout_s"], what, "idle_timeout_s", 1, 365LL * 86400) * 1000;
    }
    if (fields.contains("start_timeout_s")) {
      spec.start_timeout_ms =
          bounded(fields["start_timeout_s"], what, "start_timeout_s", 1, 86400) * 1000;
    }
    if (fields.contains("max_instances")) {
      spec.max_instances =
          static_cast<int>(bounded(fields["max_instances"], what, "max_instances", 1, 64));
    }
    return spec;
  }

  std::string scalar(const YAML::Node& node, const std::string& field) const {
    if (!node.IsScalar()) fail(node.Mark(), field + " must be a single value");
    return node.Scalar();
  }

  int64_t bounded(const YAML::Node& node, const std::string& what, const std::string& field,
                  int64_t low, int64_t high) const {
    const auto value = parse_integer(scalar(node, field));
    if (!value) fail(node.Mark(), what + ": " + field + " must be a whole number");
    if (*value < low || *value > high) {
      fail(node.Mark(), what + ": " + field + " must be between " + std::to_string(low) +
                            " and " + std::to_string(high));
    }
    return *value;
  }

  std::string url(const YAML::Node& node, const std::string& what) const {
    std::string text = scalar(node, "url");
    if (text.ends_with('/')) text.pop_back();
    try {
      http::Client check(text);
    } catch (const Error& e) {
      fail(node.Mark(), what + ": url " + e.what());
    }
    return text;
  }

  std::vector<std::string> command(const YAML::Node& node, const std::string& what) const {
    if (!node.IsSequence() || node.size() == 0) {
      fail(node.Mark(), what + ": command must be a non-empty list of words");
    }
    std::vector<std::string> words;
    for (const auto& word : node) {
      if (!word.IsScalar()) fail(word.Mark(), what + ": each word of command must be a string");
      words.push_back(word.Scalar());
    }
    if (words.front().empty()) fail(node.Mark(), what + ": command's program must not be empty");
    return words;
  }

  std::string device(const YAML::Node& node, const std::string& what) const {
    std::string text = scalar(node, "device");
    static const std::regex kDevice("cpu|cuda:[0-9]{1,2}");
    if (!std::regex_match(text, kDevice)) {
      fail(node.Mark(), what + ": device '" + text + "' must be cpu or cuda:N");
    }
    return text;
  }

};

}  // namespace

std::string BackendSpec::base_url() const {
  return started_by_us() ? "http://127.0.0.1:" + std::to_string(port) : url;
}

fs::path backends_config_path(const std::string& data_dir) {
  return fs::path(data_dir) / "config" / "backends.yaml";
}

BackendConfig parse_backend_config(const std::string& yaml_text, const std::string& origin) {
  ConfigParser parser(origin);
  return parser.parse(parser.load(yaml_text));
}

BackendConfig load_backend_config(const fs::path& path) {
  const auto text = read_config_text(path.string(), "backends config");
  return text ? parse_backend_config(*text, path.string()) : BackendConfig{};
}

}  // namespace df::backends

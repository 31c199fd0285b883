// The routing table: for each function and quality tier, the ordered models and presets to try.
#include "registry/routing_table.h"

#include <algorithm>
#include <charconv>

#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "core/files.h"
#include "core/yaml_config.h"
#include "core/numbers.h"

namespace df::registry {
namespace {

namespace fs = std::filesystem;

constexpr int kTableVersion = 1;

std::string join(const std::vector<std::string>& names) {
  std::string list;
  for (const auto& name : names) list += (list.empty() ? "" : ", ") + name;
  return list;
}

bool contains(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// A mapping's entries in file order, each with where its key is.
struct Entry {
  std::string key;
  YAML::Node value;
  YAML::Mark mark;
};

// Reads a routing table's YAML tree into a RoutingTable, failing at the first problem with its
// position in the file.
class TableParser : public YamlConfigSource {
 public:
  using YamlConfigSource::YamlConfigSource;

  RoutingTable parse(const YAML::Node& root) {
    if (root.IsNull()) fail(YAML::Mark(), "the routing table is empty");
    const auto entries =
        mapping(root, "the routing table", {"version", "presets", "routes", "prewarm"});
    const Entry& version = required(entries, root, "version", "the routing table");
    if (integer(version.value, "version") != kTableVersion) {
      fail(version.value.Mark(), "version must be " + std::to_string(kTableVersion));
    }
    RoutingTable table;
    const Entry& presets = required(entries, root, "presets", "the routing table");
    for (const Entry& preset : mapping(presets.value, "presets", {})) {
      add_preset(table.presets, preset);
    }
    const Entry& routes = required(entries, root, "routes", "the routing table");
    for (const Entry& function : mapping(routes.value, "routes", routing_functions())) {
      for (const Entry& quality :
           mapping(function.value, "routes." + function.key, routing_qualities())) {
        table.routes[function.key][quality.key] =
            chain(quality.value, function.key + "." + quality.key, table.presets);
      }
    }
    for (const auto& function : routing_functions()) {
      for (const auto& quality : routing_qualities()) {
        if (!table.routes[function].contains(quality)) {
          fail(routes.mark, "routes has no chain for " + function + "." + quality);
        }
      }
    }
    if (const Entry* prewarm = find(entries, "prewarm")) table.prewarm = model_ids(prewarm->value);
    return table;
  }

 private:
  // The entries of the mapping `node` (called `what` in errors); keys must be among `allowed`
  // unless it is empty, and unique.
  std::vector<Entry> mapping(const YAML::Node& node, const std::string& what,
                             const std::vector<std::string>& allowed) const {
    if (!node.IsMap()) fail(node.Mark(), what + " must be a mapping of names to values");
    std::vector<Entry> entries;
    for (const auto& pair : node) {
      if (!pair.first.IsScalar()) fail(pair.first.Mark(), "a key in " + what + " is not a name");
      const std::string key = pair.first.Scalar();
      if (!allowed.empty() && !contains(allowed, key)) {
        fail(pair.first.Mark(), "unknown key '" + key + "' in " + what + "; expected one of " +
                                    join(allowed));
      }
      const bool duplicate = std::any_of(entries.begin(), entries.end(),
                                         [&](const Entry& entry) { return entry.key == key; });
      if (duplicate) fail(pair.first.Mark(), "'" + key + "' appears twice in " + what);
      entries.push_back({key, pair.second, pair.first.Mark()});
    }
    return entries;
  }

  // `prewarm:`: a list of distinct model ids.
  std::vector<std::string> model_ids(const YAML::Node& node) const {
    if (!node.IsSequence()) fail(node.Mark(), "prewarm must be a list of model ids");
    std::vector<std::string> ids;
    for (const auto& item : node) {
      const std::string id = scalar(item, "a prewarm entry");
      if (id.empty()) fail(item.Mark(), "a prewarm entry is empty");
      if (contains(ids, id)) fail(item.Mark(), "'" + id + "' appears twice in prewarm");
      ids.push_back(id);
    }
    return ids;
  }

  static const Entry* find(const std::vector<Entry>& entries, std::string_view key) {
    const auto found = std::find_if(entries.begin(), entries.end(),
                                    [&](const Entry& entry) { return entry.key == key; });
    return found == entries.end() ? nullptr : &*found;
  }

  const Entry& required(const std::vector<Entry>& entries, const YAML::Node& owner,
                        const std::string& key, const std::string& what) const {
    const Entry* entry = find(entries, key);
    if (entry == nullptr) fail(owner.Mark(), what + " has no '" + key + "'");
    return *entry;
  }

  std::string scalar(const YAML::Node& node, const std::string& field) const {
    if (!node.IsScalar()) fail(node.Mark(), field + " must be a single value");
    return node.Scalar();
  }

  int64_t integer(const YAML::Node& node, const std::string& field) const {
    const auto value = parse_integer(scalar(node, field));
    if (!value) fail(node.Mark(), field + " must be a whole number");
    return *value;
  }

  int small_integer(const YAML::Node& node, const std::string& field) const {
    const int64_t value = integer(node, field);
    if (value < -1'000'000 || value > 1'000'000) fail(node.Mark(), field + " is out of range");
    return static_cast<int>(value);
  }

  double number(const YAML::Node& node, const std::string& field) const {
    const std::string text = scalar(node, field);
    double value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size()) {
      fail(node.Mark(), field + " must be a number");
    }
    return value;
  }

  std::string name(const YAML::Node& node, const std::string& field) const {
    std::string value = scalar(node, field);
    if (value.empty()) fail(node.Mark(), field + " must not be empty");
    return value;
  }

  // Reads the preset fields present in `entries` into `overrides`.
  PresetOverrides preset_fields(const std::vector<Entry>& entries) const {
    PresetOverrides fields;
    for (const Entry& entry : entries) {
      const YAML::Node& value = entry.value;
      if (entry.key == "width") fields.width = small_integer(value, "width");
      if (entry.key == "height") fields.height = small_integer(value, "height");
      if (entry.key == "steps") fields.steps = small_integer(value, "steps");
      if (entry.key == "sampler") fields.sampler = name(value, "sampler");
      if (entry.key == "scheduler") fields.scheduler = name(value, "scheduler");
      if (entry.key == "cfg") fields.cfg = number(value, "cfg");
      if (entry.key == "memory_mb") fields.memory_mb = integer(value, "memory_mb");
    }
    return fields;
  }

  // Validates `preset`, failing at the field that is wrong: in `entries` when it is there, else
  // in `fallback` (the preset's own values under a device class's overrides).
  void validate_at(const Preset& preset, const std::string& what, const std::vector<Entry>& entries,
                   const std::vector<Entry>& fallback, const YAML::Mark& mark) const {
    try {
      validate_preset(preset);
    } catch (const Error& e) {
      const std::string field = e.details().value("field", "");
      const Entry* at = find(entries, field);
      if (at == nullptr) at = find(fallback, field);
      fail(at != nullptr ? at->value.Mark() : mark, what + ": " + e.what());
    }
  }

  void add_preset(PresetCatalog& presets, const Entry& preset) const {
    if (!is_valid_preset_name(preset.key)) {
      fail(preset.mark, "preset name '" + preset.key +
                            "' is not valid: use lowercase letters, digits, '-', '_' or '.'");
    }
    const std::string what = "preset '" + preset.key + "'";
    static const std::vector<std::string> kFields = {
        "width", "height", "steps", "sampler", "scheduler", "cfg", "memory_mb", "by_device"};
    const auto entries = mapping(preset.value, what, kFields);
    for (const auto& field : kFields) {
      if (field != "by_device") required(entries, preset.value, field, what);
    }
    PresetDefinition definition;
    definition.values = with_overrides(Preset{}, preset_fields(entries));
    validate_at(definition.values, what, entries, {}, preset.mark);
    if (const Entry* by_device = find(entries, "by_device")) {
      const std::vector<std::string> override_fields(kFields.begin(), kFields.end() - 1);
      const auto devices = mapping(by_device->value, what + " by_device", device_class_names());
      for (const Entry& device : devices) {
        const std::string device_what = what + " on " + device.key;
        const auto device_entries = mapping(device.value, device_what, override_fields);
        const PresetOverrides overrides = preset_fields(device_entries);
        validate_at(with_overrides(definition.values, overrides), device_what, device_entries,
                    entries, device.mark);
        definition.by_device[*device_class_from_name(device.key)] = overrides;
      }
    }
    presets.add(preset.key, std::move(definition));
  }

  std::vector<RouteCandidate> chain(const YAML::Node& node, const std::string& what,
                                    const PresetCatalog& presets) const {
    if (!node.IsSequence() || node.size() == 0) {
      fail(node.Mark(), what + " must be a list of candidates (model or family, and preset)");
    }
    std::vector<RouteCandidate> candidates;
    for (const auto& item : node) {
      const auto entries =
          mapping(item, "a candidate of " + what, {"model", "family", "preset", "weights"});
      const Entry* model = find(entries, "model");
      const Entry* family = find(entries, "family");
      if ((model == nullptr) == (family == nullptr)) {
        fail(item.Mark(), "a candidate of " + what + " needs either a model or a family");
      }
      RouteCandidate candidate;
      if (model != nullptr) candidate.model = name(model->value, "model");
      if (family != nullptr) {
        candidate.family = name(family->value, "family");
        if (!contains(routing_families(), candidate.family)) {
          fail(family->value.Mark(), "unknown family '" + candidate.family + "'; expected one of " +
                                         join(routing_families()));
        }
      }
      if (const Entry* weights = find(entries, "weights")) {
        candidate.weights = name(weights->value, "weights");
        if (candidate.weights != "fp8" && candidate.weights != "full") {
          fail(weights->value.Mark(),
               "unknown weights '" + candidate.weights + "'; expected fp8 or full");
        }
      }
      const Entry& preset = required(entries, item, "preset", "a candidate of " + what);
      candidate.preset = name(preset.value, "preset");
      if (!presets.contains(candidate.preset)) {
        fail(preset.value.Mark(), "unknown preset '" + candidate.preset + "'; known presets: " +
                                      join(presets.names()));
      }
      candidates.push_back(std::move(candidate));
    }
    return candidates;
  }

};

RoutingTable build_default_table() {
  RoutingTable table;
  auto preset = [](int side, int steps, const char* sampler, const char* scheduler, double cfg,
                   int64_t memory_mb) {
    return Preset{side, side, steps, sampler, scheduler, cfg, memory_mb};
  };
  auto on_cpu = [](int steps, int64_t memory_mb) {
    PresetOverrides overrides;
    overrides.steps = steps;
    overrides.memory_mb = memory_mb;
    return std::map<DeviceClass, PresetOverrides>{{DeviceClass::kCpu, overrides}};
  };
  table.presets.add("sd15-fast", {preset(512, 15, "euler_ancestral", "normal", 7.0, 3584),
                                  on_cpu(12, 6144)});
  table.presets.add("sd15-standard",
                    {preset(512, 25, "dpmpp_2m", "karras", 7.0, 4096), on_cpu(20, 6144)});
  table.presets.add("sd15-high",
                    {preset(768, 40, "dpmpp_2m", "karras", 7.0, 5120), on_cpu(30, 8192)});
  table.presets.add("sdxl-fast",
                    {preset(1024, 20, "dpmpp_2m", "karras", 6.0, 9216), on_cpu(16, 16384)});
  table.presets.add("sdxl-high",
                    {preset(1024, 35, "dpmpp_2m", "karras", 6.0, 9216), on_cpu(25, 16384)});
  // FLUX.1 at ComfyUI's settings (cfg 1: the distilled guidance of dev is FluxGuidance's 3.5);
  // in system memory it needs more than a CPU machine usually has, so CPUs skip to SD.
  table.presets.add("flux-schnell",
                    {preset(1024, 4, "euler", "simple", 1.0, 16384), on_cpu(4, 49152)});
  table.presets.add("flux-dev-fp8",
                    {preset(1024, 20, "euler", "simple", 1.0, 16384), on_cpu(20, 49152)});
  table.presets.add("flux-dev",
                    {preset(1024, 28, "euler", "simple", 1.0, 24576), on_cpu(28, 49152)});
  for (const auto& function : routing_functions()) {
    table.routes[function] = {
        {"low",
         {{"", "flux_schnell", "flux-schnell"}, {"", "sd1", "sd15-fast"}, {"", "sdxl", "sdxl-fast"}}},
        {"standard",
         {{"", "flux", "flux-dev-fp8", "fp8"},
          {"", "sd1", "sd15-standard"},
          {"", "sdxl", "sdxl-fast"}}},
        {"high",
         {{"", "flux", "flux-dev", "full"}, {"", "sdxl", "sdxl-high"}, {"", "sd1", "sd15-high"}}},
    };
  }
  return table;
}

}  // namespace

const std::vector<std::string>& routing_functions() {
  static const std::vector<std::string> functions = {"create_image", "transform_image"};
  return functions;
}

const std::vector<std::string>& routing_qualities() {
  static const std::vector<std::string> qualities = {"low", "standard", "high"};
  return qualities;
}

const std::vector<std::string>& routing_families() {
  static const std::vector<std::string> families = {"sd1",  "sd2",          "sdxl", "sdxl_refiner",
                                                     "flux", "flux_schnell", "sd3",  "zimage"};
  return families;
}

const std::vector<RouteCandidate>& RoutingTable::chain(std::string_view function,
                                                       std::string_view quality) const {
  const auto by_quality = routes.find(std::string(function));
  if (by_quality == routes.end()) {
    throw Error(ErrorCode::kInvalidArgument,
                "unknown function '" + std::string(function) + "'; use one of " +
                    join(routing_functions()),
                {{"field", "function"}});
  }
  const auto candidates = by_quality->second.find(std::string(quality));
  if (candidates == by_quality->second.end()) {
    throw Error(ErrorCode::kInvalidArgument,
                "unknown quality '" + std::string(quality) + "'; use one of " +
                    join(routing_qualities()),
                {{"field", "quality"}});
  }
  return candidates->second;
}

const RoutingTable& default_routing_table() {
  static const RoutingTable table = build_default_table();
  return table;
}

fs::path routing_table_path(const fs::path& data_dir) {
  return data_dir / "config" / "routing.yaml";
}

RoutingTable parse_routing_table(std::string_view yaml, const std::string& source) {
  TableParser parser(source);
  return parser.parse(parser.load(std::string(yaml)));
}

RoutingTable load_routing_table(const fs::path& file) {
  const auto text = read_config_text(file.string(), "routing table");
  if (!text) throw Error(ErrorCode::kIo, "cannot read the routing table " + file.string());
  return parse_routing_table(*text, file.string());
}

RoutingTable load_routing_table_or_default(const fs::path& file) {
  const auto text = read_config_text(file.string(), "routing table");
  return text ? parse_routing_table(*text, file.string()) : default_routing_table();
}

}  // namespace df::registry

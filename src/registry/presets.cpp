// Presets: named generation parameter sets (size, steps, sampler, ...) tuned per device class.
#include "registry/presets.h"

#include <algorithm>

#include "core/error.h"
#include "nodes/packs/node_packs.h"

namespace df::registry {
namespace {

using nlohmann::json;

std::string join(const std::vector<std::string>& names) {
  std::string list;
  for (const auto& name : names) list += (list.empty() ? "" : ", ") + name;
  return list;
}

[[noreturn]] void reject_field(const std::string& field, const std::string& what) {
  throw Error(ErrorCode::kInvalidArgument, field + " " + what, {{"field", field}});
}

void check_side(const std::string& field, int value) {
  if (value < kPresetMinSide || value > kPresetMaxSide || value % 8 != 0) {
    reject_field(field, "must be a multiple of 8 from " + std::to_string(kPresetMinSide) + " to " +
                            std::to_string(kPresetMaxSide) + ", not " + std::to_string(value));
  }
}

void check_one_of(const std::string& field, const std::string& value,
                  const std::vector<std::string>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return;
  reject_field(field, "'" + value + "' is not one of " + join(allowed));
}

}  // namespace

Preset with_overrides(Preset values, const PresetOverrides& overrides) {
  if (overrides.width) values.width = *overrides.width;
  if (overrides.height) values.height = *overrides.height;
  if (overrides.steps) values.steps = *overrides.steps;
  if (overrides.sampler) values.sampler = *overrides.sampler;
  if (overrides.scheduler) values.scheduler = *overrides.scheduler;
  if (overrides.cfg) values.cfg = *overrides.cfg;
  if (overrides.memory_mb) values.memory_mb = *overrides.memory_mb;
  return values;
}

void validate_preset(const Preset& preset) {
  check_side("width", preset.width);
  check_side("height", preset.height);
  if (preset.steps < 1 || preset.steps > kPresetMaxSteps) {
    reject_field("steps", "must be from 1 to " + std::to_string(kPresetMaxSteps) + ", not " +
                              std::to_string(preset.steps));
  }
  check_one_of("sampler", preset.sampler, nodes::supported_samplers());
  check_one_of("scheduler", preset.scheduler, nodes::supported_schedulers());
  if (!(preset.cfg >= 0 && preset.cfg <= kPresetMaxCfg)) {
    reject_field("cfg", "must be from 0 to " + std::to_string(static_cast<int>(kPresetMaxCfg)));
  }
  if (preset.memory_mb <= 0) reject_field("memory_mb", "must be above 0");
}

bool is_valid_preset_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  auto allowed = [](char c, bool first) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    return alnum || (!first && (c == '-' || c == '_' || c == '.'));
  };
  for (size_t i = 0; i < name.size(); ++i) {
    if (!allowed(name[i], i == 0)) return false;
  }
  return true;
}

void PresetCatalog::add(const std::string& name, PresetDefinition definition) {
  if (!is_valid_preset_name(name)) {
    throw Error(ErrorCode::kInvalidArgument,
                "preset name '" + name +
                    "' is not valid: use 1 to 64 lowercase letters, digits, '-', '_' or '.'",
                {{"field", "preset"}, {"preset", name}});
  }
  validate_preset(definition.values);
  for (const auto& [device_class, overrides] : definition.by_device) {
    validate_preset(with_overrides(definition.values, overrides));
  }
  definitions_.insert_or_assign(name, std::move(definition));
}

Preset PresetCatalog::preset_for(std::string_view name, DeviceClass device_class) const {
  const auto found = definitions_.find(name);
  if (found == definitions_.end()) {
    throw Error(ErrorCode::kInvalidArgument,
                "unknown preset '" + std::string(name) + "'; known presets: " + join(names()),
                {{"field", "preset"}, {"preset", name}, {"known", names()}});
  }
  const PresetDefinition& definition = found->second;
  const auto overrides = definition.by_device.find(device_class);
  if (overrides == definition.by_device.end()) return definition.values;
  return with_overrides(definition.values, overrides->second);
}

bool PresetCatalog::contains(std::string_view name) const {
  return definitions_.find(name) != definitions_.end();
}

std::vector<std::string> PresetCatalog::names() const {
  std::vector<std::string> names;
  for (const auto& [name, definition] : definitions_) names.push_back(name);
  return names;
}

json apply_preset(const Preset& preset, json params) {
  params.erase("preset");
  const json values = {{"width", preset.width},     {"height", preset.height},
                       {"steps", preset.steps},     {"guidance", preset.cfg},
                       {"sampler", preset.sampler}, {"scheduler", preset.scheduler}};
  for (const auto& [key, value] : values.items()) {
    if (!params.contains(key)) params[key] = value;
  }
  return params;
}

json preset_to_json(const Preset& preset) {
  return {{"width", preset.width},         {"height", preset.height},
          {"steps", preset.steps},         {"sampler", preset.sampler},
          {"scheduler", preset.scheduler}, {"cfg", preset.cfg},
          {"memory_mb", preset.memory_mb}};
}

}  // namespace df::registry

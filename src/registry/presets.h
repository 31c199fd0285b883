// Presets: named generation parameter sets (size, steps, sampler, ...) tuned per device class.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "registry/device_profile.h"

namespace df::registry {

// Bounds a preset's values must keep (those of every model family's generate parameters).
inline constexpr int kPresetMinSide = 64;
inline constexpr int kPresetMaxSide = 2048;
inline constexpr int kPresetMaxSteps = 150;
inline constexpr double kPresetMaxCfg = 30.0;

// A preset resolved for one device class: the values a job gets.
struct Preset {
  int width = 512;
  int height = 512;
  int steps = 20;
  std::string sampler = "euler";
  std::string scheduler = "normal";
  double cfg = 7.0;        // the job's "guidance"
  int64_t memory_mb = 0;   // memory the model needs at these settings, MiB
  bool operator==(const Preset&) const = default;
};

// Some of a preset's values: a device class's overrides.
struct PresetOverrides {
  std::optional<int> width;
  std::optional<int> height;
  std::optional<int> steps;
  std::optional<std::string> sampler;
  std::optional<std::string> scheduler;
  std::optional<double> cfg;
  std::optional<int64_t> memory_mb;
  bool operator==(const PresetOverrides&) const = default;
};

// A named preset: its values, and what differs on some device classes.
struct PresetDefinition {
  Preset values;
  std::map<DeviceClass, PresetOverrides> by_device;
  bool operator==(const PresetDefinition&) const = default;
};

// `values` with the overrides that are set.
Preset with_overrides(Preset values, const PresetOverrides& overrides);

// Checks a preset's values: width and height multiples of 8 in [64, 2048], steps 1..150, cfg
// 0..30, a sampler and scheduler the engine implements, memory_mb above 0. Throws
// Error(kInvalidArgument) whose message names the field and whose details.field is its name
// ("width", "sampler", ...).
void validate_preset(const Preset& preset);

// Whether `name` may name a preset: 1 to 64 of a-z, 0-9, '-', '_' and '.', starting with a letter
// or digit.
bool is_valid_preset_name(std::string_view name);

// The presets of a routing table, by name.
class PresetCatalog {
 public:
  // Adds (or replaces) `name`. Throws Error(kInvalidArgument) for an invalid name or values that
  // fail validate_preset on any device class.
  void add(const std::string& name, PresetDefinition definition);

  // The preset `name` resolved for `device_class`: its values with that class's overrides.
  // Throws Error(kInvalidArgument) naming the preset and listing the known ones for an unknown
  // name (details: field "preset", preset, known).
  Preset preset_for(std::string_view name, DeviceClass device_class) const;

  bool contains(std::string_view name) const;
  // The preset names, sorted.
  std::vector<std::string> names() const;
  const std::map<std::string, PresetDefinition, std::less<>>& definitions() const {
    return definitions_;
  }

  bool operator==(const PresetCatalog&) const = default;

 private:
  std::map<std::string, PresetDefinition, std::less<>> definitions_;
};

// A generate job's parameters with a preset's values as defaults: width, height, steps,
// guidance (the preset's cfg), sampler and scheduler are set where `params` leaves them out
// (fields the job gives win), and the "preset" field (the preset's name) is dropped. Apply it
// before validating the parameters against the model's schema.
nlohmann::json apply_preset(const Preset& preset, nlohmann::json params);

// {"width","height","steps","sampler","scheduler","cfg","memory_mb"}.
nlohmann::json preset_to_json(const Preset& preset);

}  // namespace df::registry

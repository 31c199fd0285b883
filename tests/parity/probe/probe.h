// dreamforge-probe: a test tool that runs one engine component on tensors from a safetensors file,
// so the parity suite can compare each stage with diffusers. Commands register themselves.
#pragma once

#include <functional>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/weights.h"

namespace df::probe {

// inputs: tensors read from --in (may be empty); args: the --args JSON object.
// Returns tensors to write to --out.
using Command = std::function<engine::TensorMap(const nlohmann::json& args,
                                                const engine::TensorMap& inputs)>;

std::map<std::string, Command>& registry();

struct Registration {
  Registration(const std::string& name, Command command) { registry()[name] = std::move(command); }
};

}  // namespace df::probe

#define DF_PROBE_CONCAT_INNER(a, b) a##b
#define DF_PROBE_CONCAT(a, b) DF_PROBE_CONCAT_INNER(a, b)
// DF_PROBE_COMMAND("name", [](const nlohmann::json& args, const df::engine::TensorMap& in) {...});
#define DF_PROBE_COMMAND(name, fn) \
  static ::df::probe::Registration DF_PROBE_CONCAT(df_probe_reg_, __LINE__)(name, fn)

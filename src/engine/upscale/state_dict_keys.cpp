// Name queries the upscaler architectures share when they read a state dict.
#include "engine/upscale/state_dict_keys.h"

#include <algorithm>

#include "engine/key_index.h"

namespace df::engine::upscale {

bool has_all(const TensorMap& tensors, std::initializer_list<const char*> names) {
  return std::all_of(names.begin(), names.end(),
                     [&](const char* name) { return tensors.count(name) > 0; });
}

int sequence_length(const TensorMap& tensors, const std::string& prefix) {
  const std::string dotted = prefix + ".";
  int length = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name.rfind(dotted, 0) != 0) continue;
    const std::string rest = name.substr(dotted.size());
    const auto index = parse_index(rest.substr(0, rest.find('.')));
    if (index) length = std::max(length, *index + 1);
  }
  return length;
}

}  // namespace df::engine::upscale

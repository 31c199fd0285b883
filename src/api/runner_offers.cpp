// The union of what the native runners and the backends offer.
#include "api/runner_offers.h"

#include <algorithm>

namespace df::api {
namespace {

using nlohmann::json;

// The choices list of a combo input spec ([[choices], options] or ["COMBO", {"options": [...]}]),
// or null for any other input.
json* combo_choices(json& spec) {
  if (!spec.is_array() || spec.empty()) return nullptr;
  if (spec[0].is_array()) return &spec[0];
  if (spec[0] == "COMBO" && spec.size() > 1 && spec[1].is_object() && spec[1].contains("options") &&
      spec[1]["options"].is_array()) {
    return &spec[1]["options"];
  }
  return nullptr;
}

bool is_image_upload(const json& spec) {
  return spec.size() > 1 && spec[1].is_object() && spec[1].value("image_upload", false);
}

// Adds `theirs`' choices to the combo inputs of `ours` that both define (not image uploads).
void merge_choices(json& ours, const json& theirs) {
  for (const char* group : {"required", "optional"}) {
    if (!ours.contains("input") || !ours["input"].contains(group) || !theirs.contains("input") ||
        !theirs["input"].contains(group)) {
      continue;
    }
    json& our_inputs = ours["input"][group];
    const json& their_inputs = theirs["input"][group];
    if (!our_inputs.is_object() || !their_inputs.is_object()) continue;
    for (auto& [name, spec] : our_inputs.items()) {
      if (!their_inputs.contains(name)) continue;
      json their_spec = their_inputs[name];
      json* choices = combo_choices(spec);
      const json* their_choices = combo_choices(their_spec);
      if (choices == nullptr || their_choices == nullptr) continue;
      if (is_image_upload(spec)) continue;
      for (const auto& choice : *their_choices) {
        if (std::find(choices->begin(), choices->end(), choice) == choices->end()) {
          choices->push_back(choice);
        }
      }
    }
  }
}

}  // namespace

json union_object_info(json native, const std::vector<backends::BackendStatus>& backends,
                       const std::optional<std::string>& only) {
  json info = native.is_object() ? std::move(native) : json::object();
  for (const auto& status : backends) {
    if (!status.discovered || !status.offer.object_info.is_object()) continue;
    for (const auto& [class_type, definition] : status.offer.object_info.items()) {
      if (only && class_type != *only) continue;
      if (!info.contains(class_type)) {
        info[class_type] = definition;
      } else if (info[class_type].is_object() && definition.is_object()) {
        merge_choices(info[class_type], definition);
      }
    }
  }
  return info;
}

std::vector<std::string> union_model_names(std::vector<std::string> native,
                                           const std::vector<backends::BackendStatus>& backends,
                                           const std::string& folder) {
  for (const auto& status : backends) {
    if (!status.discovered) continue;
    const auto files = status.offer.model_files.find(folder);
    if (files == status.offer.model_files.end()) continue;
    for (const auto& name : files->second) {
      if (std::find(native.begin(), native.end(), name) == native.end()) native.push_back(name);
    }
  }
  return native;
}

}  // namespace df::api

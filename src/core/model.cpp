// The Model record and its JSON form (the registry's rows, descriptors and API answers).
#include "core/model.h"

#include "core/error.h"

namespace df {

using nlohmann::json;

json model_to_json(const Model& model) {
  json files = json::array();
  for (const auto& file : model.files) {
    files.push_back({{"path", file.path}, {"size", file.size}, {"sha256", file.sha256}});
  }
  return {{"id", model.id},
          {"name", model.name},
          {"kind", model.kind},
          {"family", model.family},
          {"version", model.version},
          {"source_uri", model.source_uri},
          {"revision", model.revision},
          {"format", model.format},
          {"local_path", model.local_path},
          {"ckpt_name", model.ckpt_name},
          {"checkpoint_hash", model.checkpoint_hash},
          {"files", std::move(files)},
          {"installed", model.installed},
          {"enabled", model.enabled},
          {"test_model", model.test_model},
          {"parameters_schema", model.parameters_schema},
          {"capabilities", model.capabilities},
          {"native_resolution", model.native_resolution},
          {"weight_dtype", model.weight_dtype},
          {"extra", model.extra},
          {"created_ms", model.created_ms},
          {"updated_ms", model.updated_ms}};
}

Model model_from_json(const json& json) {
  try {
    Model model;
    model.id = json.at("id").get<std::string>();
    model.name = json.value("name", model.id);
    model.kind = json.value("kind", model.kind);
    model.family = json.at("family").get<std::string>();
    model.version = json.value("version", "");
    model.source_uri = json.value("source_uri", "");
    model.revision = json.value("revision", "");
    model.format = json.value("format", "");
    model.local_path = json.at("local_path").get<std::string>();
    model.ckpt_name = json.value("ckpt_name", model.id);
    model.checkpoint_hash = json.value("checkpoint_hash", "");
    for (const auto& file : json.value("files", json::array())) {
      model.files.push_back({file.at("path").get<std::string>(), file.at("size").get<int64_t>(),
                             file.at("sha256").get<std::string>()});
    }
    model.installed = json.value("installed", true);
    model.enabled = json.value("enabled", true);
    model.test_model = json.value("test_model", false);
    model.parameters_schema = json.value("parameters_schema", json::object());
    model.capabilities = json.value("capabilities", std::vector<std::string>{});
    model.native_resolution = json.value("native_resolution", 512);
    model.weight_dtype = json.value("weight_dtype", "");
    model.extra = json.value("extra", json::object());
    model.created_ms = json.value("created_ms", int64_t{0});
    model.updated_ms = json.value("updated_ms", int64_t{0});
    return model;
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kInvalidArgument, std::string("not a model record: ") + e.what());
  }
}

}  // namespace df

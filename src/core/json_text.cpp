// JSON text out of Dream Forge that never throws on text which is not valid UTF-8.
#include "core/json_text.h"

namespace df {

std::string dump_json(const nlohmann::json& value, int indent) {
  return value.dump(indent, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

std::string valid_utf8(std::string_view text) {
  const std::string quoted = dump_json(nlohmann::json(std::string(text)));
  return nlohmann::json::parse(quoted).get<std::string>();
}

}  // namespace df

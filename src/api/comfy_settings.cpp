// ComfyUI's settings of the single user, kept in <user dir>/comfy.settings.json.
#include "api/comfy_settings.h"

#include "api/comfy_router.h"
#include "core/error.h"
#include "core/files.h"
#include "core/json_text.h"
#include "http/json_text.h"

namespace df::api {

namespace fs = std::filesystem;
using nlohmann::json;

ComfySettings::ComfySettings(const fs::path& user_dir) : file_(user_dir / "comfy.settings.json") {}

json ComfySettings::all() const {
  std::lock_guard lock(mutex_);
  return read_locked();
}

json ComfySettings::value(const std::string& id) const {
  const json settings = all();
  const auto found = settings.find(id);
  return found == settings.end() ? json(nullptr) : *found;
}

void ComfySettings::merge(const json& changes) {
  if (!changes.is_object()) {
    throw Error(ErrorCode::kBadRequest, "settings must be a JSON object of setting ids to values");
  }
  std::lock_guard lock(mutex_);
  json settings = read_locked();
  for (const auto& [id, value] : changes.items()) settings[id] = value;
  write_locked(settings);
}

void ComfySettings::set(const std::string& id, json value) {
  std::lock_guard lock(mutex_);
  json settings = read_locked();
  settings[id] = std::move(value);
  write_locked(settings);
}

json ComfySettings::read_locked() const {
  const json settings = read_file_locked();
  return settings.is_object() ? settings : json::object();
}

json ComfySettings::read_file_locked() const {
  if (!fs::exists(file_)) return json::object();
  const std::vector<uint8_t> bytes = read_file_bytes(file_.string());
  return http::parse_json_text_or_discarded(std::string_view(
      reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

void ComfySettings::write_locked(const json& settings) const {
  fs::create_directories(file_.parent_path());
  // A file that is not a settings object (written through /userdata) reads as no settings, as in
  // ComfyUI; it is kept beside the new one rather than lost.
  if (fs::exists(file_) && !read_file_locked().is_object()) {
    fs::rename(file_, fs::path(file_.string() + ".invalid"));
  }
  const std::string text = dump_json(settings, 4);
  write_file_atomically(file_.string(), std::vector<uint8_t>(text.begin(), text.end()));
}

void ComfySettings::register_routes(http::Router& router) {
  add_comfy_route(router, "GET", "/settings", with_plain_errors([this](http::Request&) {
                    return http::Response::json(200, all());
                  }));
  add_comfy_route(router, "GET", "/settings/{id}",
                  with_plain_errors([this](http::Request& request) {
                    return http::Response::json(200, value(request.path_params.at("id")));
                  }));
  add_comfy_route(router, "POST", "/settings", with_plain_errors([this](http::Request& request) {
                    merge(request.json_body(http::JsonContentType::kAny));
                    return http::Response::text(200, "");
                  }));
  add_comfy_route(router, "POST", "/settings/{id}",
                  with_plain_errors([this](http::Request& request) {
                    set(request.path_params.at("id"),
                        request.json_body(http::JsonContentType::kAny));
                    return http::Response::text(200, "");
                  }));
}

}  // namespace df::api

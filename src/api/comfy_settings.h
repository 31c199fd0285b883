// ComfyUI's settings of the single user (GET/POST /settings, /settings/{id}), kept in
// <user dir>/comfy.settings.json.
#pragma once

#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "http/router.h"

namespace df::api {

class ComfySettings {
 public:
  explicit ComfySettings(const std::filesystem::path& user_dir);

  // The saved settings object ({} before the first save). Throws Error(kIo) when the file cannot
  // be read or is not a JSON object (it is never replaced then, so nothing is lost).
  nlohmann::json all() const;
  // The value saved under `id`, or null.
  nlohmann::json value(const std::string& id) const;
  // Saves `changes` (an object, else Error(kBadRequest)) over the saved settings, key by key.
  void merge(const nlohmann::json& changes);
  // Saves `value` under `id`.
  void set(const std::string& id, nlohmann::json value);

  // GET/POST /settings and /settings/{id}, with and without "/api".
  void register_routes(http::Router& router);

 private:
  // The settings; {} when the file is missing or is not a JSON object.
  nlohmann::json read_locked() const;
  // The file's JSON as it is (discarded when it is not JSON).
  nlohmann::json read_file_locked() const;
  void write_locked(const nlohmann::json& settings) const;

  std::filesystem::path file_;
  mutable std::mutex mutex_;  // read-modify-write of the file: the frontend saves several at once
};

}  // namespace df::api

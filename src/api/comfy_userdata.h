// ComfyUI's user data of the single user: /users and the /userdata file routes (workflows,
// subgraphs, templates ... below <user dir>), answered like ComfyUI's user manager.
#pragma once

#include <filesystem>
#include <mutex>

#include "http/router.h"

namespace df::api {

class ComfyUserData {
 public:
  explicit ComfyUserData(std::filesystem::path user_dir);

  // GET/POST /users, GET /userdata, GET /v2/userdata, GET/POST/DELETE /userdata/{file} and
  // POST /userdata/{file}/move/{dest}, each with and without "/api".
  void register_routes(http::Router& router);

 private:
  http::Response users() const;
  // GET /user.css: the user's stylesheet (<user dir>/user.css), which the frontend's page links.
  http::Response user_stylesheet() const;
  // POST /users: ComfyUI creates users only in multi-user mode; with its single "default" user
  // this answers 400 {"error": ...} like ComfyUI's refusals (duplicate, empty name).
  static http::Response add_user(const http::Request& request);
  http::Response list(const http::Request& request) const;
  http::Response list_tree(const http::Request& request) const;
  http::Response read(const http::Request& request) const;
  http::Response write_or_move(const http::Request& request);
  http::Response write(const std::filesystem::path& path, const http::Request& request);
  http::Response move(const std::filesystem::path& source, const std::filesystem::path& dest,
                      const http::Request& request);
  http::Response remove(const http::Request& request);

  // The path a name from the request points to: Error(kBadRequest) when empty,
  // Error(kForbidden) when it leaves the user directory.
  std::filesystem::path path_of(const std::string& name) const;
  // What a successful save or move answers: the relative path, or its file info with full_info.
  http::Response saved(const std::filesystem::path& path, const http::Request& request) const;

  std::filesystem::path root_;  // absolute and canonical
  // Held from the "does it exist" check of overwrite=false to the write or move, so two saves of
  // one name cannot both succeed.
  std::mutex write_mutex_;
};

}  // namespace df::api

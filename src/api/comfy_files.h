// ComfyUI's image file routes: GET /view and POST /upload/image on the input, output and temp
// folders.
#pragma once

#include <mutex>

#include "api/comfy_folders.h"
#include "http/router.h"

namespace df::api {

class ComfyFiles {
 public:
  explicit ComfyFiles(ComfyFolders folders) : folders_(std::move(folders)) {}

  // GET /view and POST /upload/image, with and without "/api"; errors as bare statuses.
  void register_routes(http::Router& router);

 private:
  ComfyFolders folders_;
  std::mutex upload_mutex_;  // picking a free name and writing it is one step
};

}  // namespace df::api

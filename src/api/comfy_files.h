// ComfyUI's image file routes: GET /view, POST /upload/image and POST /upload/mask on the input,
// output and temp folders.
#pragma once

#include <mutex>

#include "api/comfy_folders.h"
#include "api/comfy_upload.h"
#include "http/router.h"

namespace df::api {

class ComfyFiles {
 public:
  explicit ComfyFiles(ComfyFolders folders) : folders_(std::move(folders)) {}

  // GET /view, POST /upload/image and POST /upload/mask, with and without "/api"; errors as bare
  // statuses.
  void register_routes(http::Router& router);

 private:
  // Saves a checked upload under a free name and answers ComfyUI's {"name","subfolder","type"}.
  http::Response store(const ImageUpload& upload);

  ComfyFolders folders_;
  std::mutex upload_mutex_;  // picking a free name and writing it is one step
};

}  // namespace df::api

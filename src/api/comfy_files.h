// ComfyUI's image file routes: GET /view, POST /upload/image and POST /upload/mask on the input,
// output and temp folders.
#pragma once

#include <mutex>

#include "api/comfy_folders.h"
#include "api/comfy_upload.h"
#include "blob/blob_store.h"
#include "http/router.h"
#include "store/store.h"

namespace df::api {

class ComfyFiles {
 public:
  // `store` and `blobs` find outputs saved on other machines (URLs signed for `url_ttl_seconds`).
  ComfyFiles(ComfyFolders folders, store::Store& store, blob::BlobStore& blobs,
             int64_t url_ttl_seconds)
      : folders_(std::move(folders)), store_(store), blobs_(blobs), url_ttl_seconds_(url_ttl_seconds) {}

  // GET /view, POST /upload/image and POST /upload/mask, with and without "/api"; errors as bare
  // statuses.
  void register_routes(http::Router& router);

 private:
  // The file in this machine's folders; else, for an output a worker on another machine saved, a
  // redirect (302) to its artifact in the blob store, as stored.
  http::Response view(const http::Request& request);
  // For a non-admin caller: whether an output the query names is an artifact of their own job.
  bool owns_output(const http::Request& request);
  // Saves a checked upload under a free name and answers ComfyUI's {"name","subfolder","type"}.
  http::Response save_upload(const ImageUpload& upload);

  ComfyFolders folders_;
  store::Store& store_;
  blob::BlobStore& blobs_;
  int64_t url_ttl_seconds_;
  std::mutex upload_mutex_;  // picking a free name and writing it is one step
};

}  // namespace df::api

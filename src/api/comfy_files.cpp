// ComfyUI's image file routes: GET /view, POST /upload/image and POST /upload/mask.
#include "api/comfy_files.h"

#include "api/comfy_masks.h"
#include "api/comfy_router.h"
#include "api/comfy_view.h"

namespace df::api {

void ComfyFiles::register_routes(http::Router& router) {
  add_comfy_route(router, "GET", "/view", with_plain_errors([this](http::Request& request) {
                    return view_file(folders_, request.query);
                  }));
  add_comfy_route(router, "POST", "/upload/image",
                  with_plain_errors([this](http::Request& request) {
                    return store(parse_image_upload(upload_form(request)));
                  }));
  add_comfy_route(router, "POST", "/upload/mask", with_plain_errors([this](http::Request& request) {
                    return store(parse_mask_upload(folders_, request));
                  }));
}

http::Response ComfyFiles::store(const ImageUpload& upload) {
  std::lock_guard lock(upload_mutex_);
  return http::Response::json(200, save_image_upload(folders_, upload));
}

}  // namespace df::api

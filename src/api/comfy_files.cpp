// ComfyUI's image file routes: GET /view, POST /upload/image and POST /upload/mask.
#include "api/comfy_files.h"

#include "api/comfy_masks.h"
#include "api/comfy_router.h"
#include "api/comfy_view.h"
#include "core/error.h"

namespace df::api {

void ComfyFiles::register_routes(http::Router& router) {
  add_comfy_route(router, "GET", "/view", with_plain_errors([this](http::Request& request) {
                    return view(request);
                  }));
  add_comfy_route(router, "POST", "/upload/image",
                  with_plain_errors([this](http::Request& request) {
                    return save_upload(parse_image_upload(upload_form(request)));
                  }));
  add_comfy_route(router, "POST", "/upload/mask", with_plain_errors([this](http::Request& request) {
                    return save_upload(parse_mask_upload(folders_, request));
                  }));
}

bool ComfyFiles::owns_output(const http::Request& request) {
  const auto& query = request.query;
  const auto type = query.find("type");
  if (type != query.end() && type->second != "output") return true;
  const auto filename = query.find("filename");
  const auto subfolder = query.find("subfolder");
  if (filename == query.end()) return true;  // view_file answers the missing name
  const auto artifact = store_.find_output_artifact(
      subfolder == query.end() ? "" : subfolder->second, filename->second);
  if (!artifact) return false;
  const auto job = store_.get_job(artifact->job_id);
  return job && request.caller.may_access(job->owner);
}

http::Response ComfyFiles::view(const http::Request& request) {
  if (!request.caller.admin && !owns_output(request)) {
    throw Error(ErrorCode::kNotFound, "no such file");
  }
  try {
    return view_file(folders_, request.query);
  } catch (const Error& e) {
    const auto& query = request.query;
    const auto type = query.find("type");
    const auto filename = query.find("filename");
    const bool output = type == query.end() || type->second == "output";
    if (e.code() != ErrorCode::kNotFound || !output || filename == query.end()) throw;
    const auto subfolder = query.find("subfolder");
    const auto artifact = store_.find_output_artifact(
        subfolder == query.end() ? "" : subfolder->second, filename->second);
    if (!artifact) throw;
    http::Response redirect = http::Response::text(302, "");
    redirect.headers.push_back({"Location", blobs_.signed_url(artifact->key, url_ttl_seconds_)});
    return redirect;
  }
}

http::Response ComfyFiles::save_upload(const ImageUpload& upload) {
  std::lock_guard lock(upload_mutex_);
  return http::Response::json(200, save_image_upload(folders_, upload));
}

}  // namespace df::api

// The jobs API of ComfyUI's web frontend (/api/jobs): its queue panel and history sidebar.
#pragma once

#include "http/router.h"
#include "store/store.h"

namespace df::api {

class ComfyJobs {
 public:
  explicit ComfyJobs(store::Store& store) : store_(store) {}
  // GET /api/jobs and GET /api/jobs/{id} (only with the /api prefix, as ComfyUI declares them).
  void register_routes(http::Router& router);

 private:
  http::Response list(http::Request& request);
  http::Response detail(http::Request& request);

  store::Store& store_;
};

}  // namespace df::api

// The DGX-Pixels endpoint of `dreamforge serve|api --zmq`: requests, the job feed and its updates.
#pragma once

#include <cstdint>
#include <string>

#include "api/api_service.h"
#include "api/event_hub.h"
#include "blob/blob_store.h"
#include "core/job.h"
#include "core/live_image.h"
#include "pixels/server/job_feed.h"
#include "pixels/server/pixels_requests.h"
#include "pixels/server/request_server.h"
#include "pixels/server/update_publisher.h"
#include "registry/model_registry.h"
#include "store/store.h"

namespace df::pixels {

struct PixelsEndpointSettings {
  std::string req_address;    // --zmq-req-addr
  std::string pub_address;    // --zmq-pub-addr
  std::string models_root;    // checkpoints/, loras/ and vae/ below it
  std::string previews_root;  // <data>/temp/previews
  int64_t url_ttl_s = 3600;   // of image_path URLs when the artifacts are not stored locally
};

class PixelsEndpoint {
 public:
  // Binds both sockets (throws Error(kUnavailable) naming the option whose address cannot be
  // bound) and starts answering and publishing; everything it uses must outlive it.
  PixelsEndpoint(api::ApiService& api, store::Store& store, registry::ModelRegistry& models,
                 blob::BlobStore& blobs, api::EventHub& hub, const PixelsEndpointSettings& settings);

  // A worker's live image (see JobFeed::on_live_image); safe from any thread.
  void on_live_image(const Job& job, const LiveImage& image) { feed_.on_live_image(job, image); }

 private:
  // Destroyed in reverse: requests stop first, then the feed, then the updates' socket.
  UpdatePublisher publisher_;
  JobFeed feed_;
  PixelsRequests requests_;
  RequestServer server_;
};

}  // namespace df::pixels

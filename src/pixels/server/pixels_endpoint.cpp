// Assembly of the endpoint's parts.
#include "pixels/server/pixels_endpoint.h"

#include "pixels/server/artifact_locator.h"

namespace df::pixels {

PixelsEndpoint::PixelsEndpoint(api::ApiService& api, store::Store& store,
                               registry::ModelRegistry& models, blob::BlobStore& blobs,
                               api::EventHub& hub, const PixelsEndpointSettings& settings)
    : publisher_(settings.pub_address, "--zmq-pub-addr"),
      feed_(store, hub, artifact_locator(blobs, settings.url_ttl_s),
            [this](const nlohmann::ordered_json& update) { publisher_.publish(update); },
            JobFeedSettings{.previews_root = settings.previews_root}),
      requests_(api, store, models, settings.models_root, DF_VERSION),
      server_(RequestServerSettings{.address = settings.req_address, .option = "--zmq-req-addr"},
              [this](const nlohmann::json& message) { return requests_.handle(message); }) {}

}  // namespace df::pixels

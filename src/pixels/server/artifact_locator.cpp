// Artifact paths and URLs for image_path.
#include "pixels/server/artifact_locator.h"

#include "blob/local_blob_store.h"

namespace df::pixels {

std::function<std::string(const std::string& key)> artifact_locator(blob::BlobStore& blobs,
                                                                     int64_t url_ttl_s) {
  if (const auto* local = dynamic_cast<const blob::LocalBlobStore*>(&blobs)) {
    return [local](const std::string& key) { return local->path(key); };
  }
  return [&blobs, url_ttl_s](const std::string& key) { return blobs.signed_url(key, url_ttl_s); };
}

}  // namespace df::pixels

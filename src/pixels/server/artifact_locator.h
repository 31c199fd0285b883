// Where a DGX-Pixels client finds an artifact: its file, or a signed URL when it is stored elsewhere.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "blob/blob_store.h"

namespace df::pixels {

// For a blob key: the artifact's file path when `blobs` is a local directory (the client runs on
// this machine, as the original protocol assumes), else a URL signed for `url_ttl_s` seconds (the
// signing GET /v1/jobs/{id}/artifacts uses).
std::function<std::string(const std::string& key)> artifact_locator(blob::BlobStore& blobs,
                                                                     int64_t url_ttl_s);

}  // namespace df::pixels

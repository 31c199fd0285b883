// The BlobStore: where artifact files live (a local directory; S3/MinIO at scale), and signed URLs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace df::blob {

class BlobStore {
 public:
  virtual ~BlobStore() = default;
  // Stores the file at `source_path` under `key` (replacing an earlier blob with that key).
  virtual void put_file(const std::string& key, const std::string& source_path,
                        const std::string& content_type) = 0;
  virtual bool exists(const std::string& key) = 0;
  // A URL the client fetches the blob from, valid for `ttl_seconds`. Relative URLs ("/v1/files/...")
  // are served by this API; absolute ones point at the storage server.
  virtual std::string signed_url(const std::string& key, int64_t ttl_seconds) = 0;
  // Throws Error(kUnavailable) when the storage cannot be written.
  virtual void check_writable() = 0;
  // Creates the bucket or folder when it does not exist (a deployment's first start); true when it
  // was created, false when it was there. Throws Error(kUnavailable) when it cannot be created.
  virtual bool create_if_missing() = 0;
};

// Opens the store named by a storage URL ("file:///path" or "s3://bucket?endpoint=...&region=...";
// S3 credentials come from the environment); `secret` signs local URLs. Throws
// Error(kInvalidArgument) naming DREAMFORGE_STORAGE_URL for an unknown scheme.
std::unique_ptr<BlobStore> open_blob_store(const std::string& storage_url, const std::string& secret);

}  // namespace df::blob

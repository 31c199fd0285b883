// The BlobStore on an S3 bucket (AWS, MinIO or another S3-compatible server); URLs are presigned.
#pragma once

#include <string>

#include "blob/blob_store.h"
#include "blob/s3_client.h"
#include "blob/s3_settings.h"

namespace df::blob {

// The bucket must exist before the service writes (create_if_missing makes it, private: objects are
// only read through presigned URLs). Every failure names the bucket and endpoint, never the secret.
class S3BlobStore : public BlobStore {
 public:
  explicit S3BlobStore(S3Settings settings);

  // One PUT carrying Content-Type and x-amz-checksum-sha256 up to the multipart threshold; a
  // multipart upload (each part with its checksum, aborted on failure) above it.
  void put_file(const std::string& key, const std::string& source_path,
                const std::string& content_type) override;
  // HEAD of the object; a missing bucket is an error rather than `false`.
  bool exists(const std::string& key) override;
  // A presigned GET URL on the storage server itself.
  std::string signed_url(const std::string& key, int64_t ttl_seconds) override;
  // Writes and deletes a small probe object.
  void check_writable() override;
  // CreateBucket (with the region as its location outside us-east-1); a bucket this account
  // already owns is left as it is.
  bool create_if_missing() override;

 private:
  void put_whole(const std::string& key, std::string body, const std::string& content_type);
  void put_in_parts(const std::string& key, const std::string& source_path, int64_t size,
                    const std::string& content_type);
  std::string upload_parts(const std::string& key, const std::string& upload_id,
                           const std::string& source_path, int64_t size);
  S3Response expect_success(const S3Request& request, const std::string& action);

  S3Client client_;
};

}  // namespace df::blob

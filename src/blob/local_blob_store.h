// The BlobStore on a local directory; URLs point at the API's signed /v1/files route.
#pragma once

#include <string>

#include "blob/blob_store.h"
#include "blob/url_signer.h"

namespace df::blob {

class LocalBlobStore : public BlobStore {
 public:
  LocalBlobStore(std::string root, UrlSigner signer);
  void put_file(const std::string& key, const std::string& source_path,
                const std::string& content_type) override;
  bool exists(const std::string& key) override;
  std::string signed_url(const std::string& key, int64_t ttl_seconds) override;
  void check_writable() override;
  bool create_if_missing() override;
  // The file behind a key after checking the URL's signature and expiry (Error kForbidden), or
  // Error(kNotFound). Keys never escape the root.
  std::string verified_path(const std::string& key, int64_t expires, const std::string& signature) const;
  // The file behind a key, for readers on this machine (Error(kInvalidArgument) for a key that
  // would leave the root).
  std::string path(const std::string& key) const;

 private:
  std::string root_;
  UrlSigner signer_;
};

}  // namespace df::blob

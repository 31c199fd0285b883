// The BlobStore on a local directory.
#include "blob/local_blob_store.h"

#include <filesystem>

#include "blob/s3_blob_store.h"
#include "core/error.h"
#include "core/files.h"
#include "core/ids.h"

namespace df::blob {

namespace fs = std::filesystem;

LocalBlobStore::LocalBlobStore(std::string root, UrlSigner signer)
    : root_(std::move(root)), signer_(std::move(signer)) {
  std::error_code error;
  fs::create_directories(root_, error);
  if (error) {
    throw Error(ErrorCode::kUnavailable,
                "storage: cannot create " + root_ + ": " + error.message());
  }
}

void LocalBlobStore::put_file(const std::string& key, const std::string& source_path,
                              const std::string& content_type) {
  const std::string target = join_inside(root_, key, "storage key");
  std::error_code error;
  fs::create_directories(fs::path(target).parent_path(), error);
  if (error) {
    throw Error(ErrorCode::kIo, "storage: cannot create a folder for " + key + ": " + error.message());
  }
  write_file_atomically(target, read_file_bytes(source_path));
}

bool LocalBlobStore::exists(const std::string& key) {
  return fs::is_regular_file(join_inside(root_, key, "storage key"));
}

std::string LocalBlobStore::signed_url(const std::string& key, int64_t ttl_seconds) {
  const int64_t expires = now_ms() / 1000 + ttl_seconds;
  return "/v1/files/" + key + "?expires=" + std::to_string(expires) +
         "&sig=" + signer_.signature(key, expires);
}

void LocalBlobStore::check_writable() {
  const std::string probe = (fs::path(root_) / (".ready-" + random_hex(6))).string();
  try {
    write_file_atomically(probe, {'o', 'k'});
  } catch (const Error& e) {
    throw Error(ErrorCode::kUnavailable, "storage: " + root_ + " cannot be written: " + e.what());
  }
  fs::remove(probe);
}

bool LocalBlobStore::create_if_missing() {
  std::error_code error;
  const bool created = fs::create_directories(root_, error);
  if (error) {
    throw Error(ErrorCode::kUnavailable, "storage: " + root_ + " cannot be created: " + error.message());
  }
  return created;
}

std::string LocalBlobStore::verified_path(const std::string& key, int64_t expires,
                                          const std::string& signature) const {
  signer_.verify(key, expires, signature, now_ms() / 1000);
  const std::string path = join_inside(root_, key, "storage key");
  if (!fs::is_regular_file(path)) throw Error(ErrorCode::kNotFound, "no file '" + key + "'");
  return path;
}

std::string LocalBlobStore::path(const std::string& key) const {
  return join_inside(root_, key, "storage key");
}

std::unique_ptr<BlobStore> open_blob_store(const std::string& storage_url, const std::string& secret) {
  constexpr std::string_view kFile = "file://";
  if (storage_url.rfind(kFile, 0) == 0 && storage_url.size() > kFile.size()) {
    return std::make_unique<LocalBlobStore>(storage_url.substr(kFile.size()), UrlSigner(secret));
  }
  if (storage_url.rfind("s3://", 0) == 0) {
    return std::make_unique<S3BlobStore>(parse_s3_storage_url(storage_url, process_environment));
  }
  throw Error(ErrorCode::kInvalidArgument, "DREAMFORGE_STORAGE_URL: unsupported storage URL '" +
                                               storage_url +
                                               "' (known: file:///path, s3://bucket?endpoint=...)");
}

}  // namespace df::blob

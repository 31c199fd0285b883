// The BlobStore on an S3 bucket: whole and multipart uploads, HEAD, presigned URLs.
#include "blob/s3_blob_store.h"

#include <filesystem>
#include <fstream>

#include "core/base64.h"
#include "core/error.h"
#include "core/files.h"
#include "core/sha256.h"

namespace df::blob {

namespace {

namespace fs = std::filesystem;

constexpr const char* kProbeKey = "dreamforge/.writable-probe";

// base64 of the SHA-256 digest, as x-amz-checksum-sha256 wants it.
std::string checksum_sha256(const std::string& bytes) {
  const std::string hex = sha256_hex(bytes.data(), bytes.size());
  std::vector<uint8_t> digest;
  for (size_t i = 0; i < hex.size(); i += 2) {
    digest.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return encode_base64(digest);
}

void check_key(const std::string& key) {
  if (key.empty() || key.size() > 1024) {
    throw Error(ErrorCode::kInvalidArgument, "storage key must have 1 to 1024 characters");
  }
}

int64_t file_size_of(const std::string& path) {
  std::error_code error;
  const auto size = fs::file_size(path, error);
  if (error) throw Error(ErrorCode::kIo, "storage: cannot read " + path + ": " + error.message());
  return static_cast<int64_t>(size);
}

std::string read_range(const std::string& path, int64_t offset, int64_t length) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes(static_cast<size_t>(length), '\0');
  in.seekg(offset);
  in.read(bytes.data(), length);
  if (in.gcount() != length) {
    throw Error(ErrorCode::kIo, "storage: " + path + " changed while it was being uploaded");
  }
  return bytes;
}

}  // namespace

S3BlobStore::S3BlobStore(S3Settings settings) : client_(std::move(settings)) {
  if (client_.settings().part_size < 5 << 20) {
    throw Error(ErrorCode::kInternal, "S3 multipart parts must be at least 5 MiB");
  }
}

S3Response S3BlobStore::expect_success(const S3Request& request, const std::string& action) {
  S3Response response = client_.send(request);
  if (!response.ok()) throw s3_error(response, client_.settings(), action);
  return response;
}

void S3BlobStore::put_file(const std::string& key, const std::string& source_path,
                           const std::string& content_type) {
  check_key(key);
  const int64_t size = file_size_of(source_path);
  if (size <= client_.settings().multipart_threshold) {
    const std::vector<uint8_t> bytes = read_file_bytes(source_path);
    put_whole(key, std::string(bytes.begin(), bytes.end()), content_type);
  } else {
    put_in_parts(key, source_path, size, content_type);
  }
}

void S3BlobStore::put_whole(const std::string& key, std::string body,
                            const std::string& content_type) {
  S3Request request{"PUT", key, {}, {{"Content-Type", content_type}}, std::move(body)};
  request.headers.emplace_back("x-amz-checksum-sha256", checksum_sha256(request.body));
  expect_success(request, "upload '" + key + "'");
}

void S3BlobStore::put_in_parts(const std::string& key, const std::string& source_path, int64_t size,
                               const std::string& content_type) {
  const S3Response created =
      expect_success({"POST",
                      key,
                      {{"uploads", ""}},
                      {{"Content-Type", content_type}, {"x-amz-checksum-algorithm", "SHA256"}},
                      ""},
                     "start a multipart upload of '" + key + "'");
  const std::string upload_id = xml_element_text(created.body, "UploadId");
  if (upload_id.empty()) {
    throw Error(ErrorCode::kUnavailable, "S3 at " + client_.settings().endpoint +
                                             " started a multipart upload without an UploadId");
  }
  try {
    const std::string parts = upload_parts(key, upload_id, source_path, size);
    const std::string action = "finish the multipart upload of '" + key + "'";
    const S3Response completed =
        expect_success({"POST",
                        key,
                        {{"uploadId", upload_id}},
                        {{"Content-Type", "application/xml"}},
                        "<CompleteMultipartUpload>" + parts + "</CompleteMultipartUpload>"},
                       action);
    // S3 may answer 200 and still report a failure in the body.
    if (!xml_element_text(completed.body, "Code").empty()) {
      throw s3_error({500, {}, completed.body}, client_.settings(), action);
    }
  } catch (const Error&) {
    client_.send({"DELETE", key, {{"uploadId", upload_id}}, {}, ""});  // frees the stored parts
    throw;
  }
}

// Uploads every part; returns the <Part> elements the completion lists.
std::string S3BlobStore::upload_parts(const std::string& key, const std::string& upload_id,
                                      const std::string& source_path, int64_t size) {
  const int64_t part_size = client_.settings().part_size;
  std::string parts;
  for (int64_t offset = 0, number = 1; offset < size; offset += part_size, ++number) {
    S3Request request{"PUT",
                      key,
                      {{"partNumber", std::to_string(number)}, {"uploadId", upload_id}},
                      {},
                      read_range(source_path, offset, std::min(part_size, size - offset))};
    const std::string checksum = checksum_sha256(request.body);
    request.headers.emplace_back("x-amz-checksum-sha256", checksum);
    const S3Response uploaded =
        expect_success(request, "upload part " + std::to_string(number) + " of '" + key + "'");
    const auto etag = uploaded.headers.find("etag");
    if (etag == uploaded.headers.end()) {
      throw Error(ErrorCode::kUnavailable, "S3 at " + client_.settings().endpoint +
                                               " stored a part without returning its ETag");
    }
    parts += "<Part><PartNumber>" + std::to_string(number) + "</PartNumber><ETag>" + etag->second +
             "</ETag><ChecksumSHA256>" + checksum + "</ChecksumSHA256></Part>";
  }
  return parts;
}

bool S3BlobStore::exists(const std::string& key) {
  check_key(key);
  const S3Response object = client_.send({"HEAD", key, {}, {}, ""});
  if (object.ok()) return true;
  if (object.status != 404) throw s3_error(object, client_.settings(), "look up '" + key + "'");
  const S3Response bucket = client_.send({"HEAD", "", {}, {}, ""});
  if (bucket.status == 404) throw missing_bucket_error(client_.settings());
  return false;
}

std::string S3BlobStore::signed_url(const std::string& key, int64_t ttl_seconds) {
  check_key(key);
  return client_.presigned_get_url(key, ttl_seconds);
}

bool S3BlobStore::create_if_missing() {
  const std::string& region = client_.settings().region;
  std::string body;
  if (!region.empty() && region != "us-east-1") {
    body = "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
           "<LocationConstraint>" + region + "</LocationConstraint></CreateBucketConfiguration>";
  }
  const S3Response response = client_.send({"PUT", "", {}, {}, body});
  if (response.ok()) return true;
  if (response.status == 409 && xml_element_text(response.body, "Code") == "BucketAlreadyOwnedByYou") {
    return false;
  }
  throw s3_error(response, client_.settings(), "create the bucket");
}

void S3BlobStore::check_writable() {
  expect_success({"PUT", kProbeKey, {}, {{"Content-Type", "text/plain"}}, "ok"},
                 "write a probe object");
  expect_success({"DELETE", kProbeKey, {}, {}, ""}, "delete the probe object");
}

}  // namespace df::blob

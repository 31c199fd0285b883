// Tests of the S3 blob store against a real S3 server (MinIO) started on loopback: whole and
// multipart uploads, HEAD, presigned URLs (expiry, tampering), credentials and bucket errors,
// retries across a server restart.
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "blob/blob_store.h"
#include "blob/s3_blob_store.h"
#include "core/base64.h"
#include "s3_server.h"
#include "test_support.h"

namespace df::blob {
namespace {

namespace fs = std::filesystem;
using test::error_of;

constexpr const char* kBucket = "artifacts";

struct Download {
  long status = 0;
  std::string body;
  std::string content_type;
};

// A plain GET, as a browser fetching a presigned URL does it.
Download download(const std::string& url) {
  Download result;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(
      curl, CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t count, void* body) {
        static_cast<std::string*>(body)->append(data, size * count);
        return size * count;
      });
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &result.body);
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
    const char* type = nullptr;
    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
    if (type != nullptr) result.content_type = type;
  }
  curl_easy_cleanup(curl);
  return result;
}

std::string sha256_base64(const std::string& bytes) {
  std::vector<uint8_t> digest(SHA256_DIGEST_LENGTH);
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest.data());
  return encode_base64(digest);
}

std::string random_bytes(size_t size) {
  std::mt19937 generator(7);
  std::string bytes(size, '\0');
  for (char& byte : bytes) byte = static_cast<char>(generator());
  return bytes;
}

class S3BlobStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_dir_ = fs::temp_directory_path() / ("df_s3_server_" + std::to_string(::getpid()));
    fs::remove_all(server_dir_);
    server_ = std::make_unique<test::S3Server>(server_dir_);
    if (server_->running()) server_->create_bucket(kBucket);
  }
  static void TearDownTestSuite() {
    server_.reset();
    fs::remove_all(server_dir_);
  }
  void SetUp() override {
    if (!server_->running()) GTEST_FAIL() << "the S3 server is not running";
  }

  static S3Settings settings(const std::string& bucket = kBucket) {
    S3Settings settings = server_->settings(bucket);
    settings.first_retry_delay_ms = 50;
    return settings;
  }
  std::string source(const std::string& name, const std::string& content) const {
    const fs::path path = dir_.path() / name;
    std::ofstream(path, std::ios::binary) << content;
    return path.string();
  }

  static inline fs::path server_dir_;
  static inline std::unique_ptr<test::S3Server> server_;
  test::TestDir dir_{"df_s3_blobs_"};
};

TEST_F(S3BlobStoreTest, PutStoresTheFileWithItsContentType) {
  S3BlobStore store(settings());
  const std::string key = "dreamforge/default/jobs/j1/9/20261122T130509Z_0_64x64_42.png";
  EXPECT_FALSE(store.exists(key));
  store.put_file(key, source("a.png", "pixels"), "image/png");
  EXPECT_TRUE(store.exists(key));
  const Download fetched = download(store.signed_url(key, 600));
  EXPECT_EQ(fetched.status, 200) << fetched.body;
  EXPECT_EQ(fetched.body, "pixels");
  EXPECT_EQ(fetched.content_type, "image/png");
  const S3Response head =
      S3Client(settings()).send({"HEAD", key, {}, {{"x-amz-checksum-mode", "ENABLED"}}, ""});
  EXPECT_EQ(head.headers.at("x-amz-checksum-sha256"), sha256_base64("pixels"))
      << "the server keeps the checksum it verified";
}

TEST_F(S3BlobStoreTest, PutReplacesAnEarlierObject) {
  S3BlobStore store(settings());
  store.put_file("replace/me.txt", source("a.txt", "first"), "text/plain");
  store.put_file("replace/me.txt", source("b.txt", "second, longer"), "text/plain");
  EXPECT_EQ(download(store.signed_url("replace/me.txt", 600)).body, "second, longer");
}

TEST_F(S3BlobStoreTest, KeysWithSpacesAndSymbolsRoundTrip) {
  S3BlobStore store(settings());
  const std::string key = "odd keys/a b+c=d&e (1).png";
  store.put_file(key, source("a.png", "odd"), "image/png");
  EXPECT_TRUE(store.exists(key));
  EXPECT_EQ(download(store.signed_url(key, 600)).body, "odd");
}

TEST_F(S3BlobStoreTest, LargeFileGoesUpInPartsAndComesBackWhole) {
  S3Settings multipart = settings();
  multipart.multipart_threshold = 1 << 20;
  multipart.part_size = 5 << 20;
  S3BlobStore store(multipart);
  const std::string content = random_bytes((11 << 20) + 123);
  store.put_file("big/file.bin", source("big.bin", content), "application/octet-stream");
  const S3Response head = S3Client(multipart).send({"HEAD", "big/file.bin", {}, {}, ""});
  ASSERT_EQ(head.status, 200);
  EXPECT_EQ(head.headers.at("content-length"), std::to_string(content.size()));
  EXPECT_TRUE(head.headers.at("etag").ends_with("-3\""))
      << "three parts: " << head.headers.at("etag");
  const Download fetched = download(store.signed_url("big/file.bin", 600));
  EXPECT_EQ(fetched.status, 200);
  EXPECT_TRUE(fetched.body == content) << "the downloaded file differs";
  EXPECT_EQ(fetched.content_type, "application/octet-stream");
}

TEST_F(S3BlobStoreTest, BucketIsPrivate) {
  S3BlobStore store(settings());
  store.put_file("private.png", source("a.png", "secret pixels"), "image/png");
  EXPECT_EQ(download(server_->endpoint() + "/" + kBucket + "/private.png").status, 403);
}

TEST_F(S3BlobStoreTest, PresignedUrlExpires) {
  S3BlobStore store(settings());
  store.put_file("expiring.png", source("a.png", "soon gone"), "image/png");
  // A presigned URL is dated in whole seconds, so one valid for N seconds may have only a little
  // over N - 1 left when it is made; 4 s leave the first download time on a loaded machine.
  constexpr int kLifetimeSeconds = 4;
  const std::string url = store.signed_url("expiring.png", kLifetimeSeconds);
  EXPECT_EQ(download(url).status, 200);
  // Refused once its lifetime is over: asked again until then, up to a generous deadline.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  Download late = download(url);
  while (late.status == 200 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    late = download(url);
  }
  EXPECT_EQ(late.status, 403) << late.body;
}

TEST_F(S3BlobStoreTest, TamperedPresignedUrlIsRefused) {
  S3BlobStore store(settings());
  store.put_file("one.png", source("a.png", "one"), "image/png");
  store.put_file("two.png", source("b.png", "two"), "image/png");
  const std::string url = store.signed_url("one.png", 600);
  std::string other_key = url;
  other_key.replace(other_key.find("one.png"), 7, "two.png");
  EXPECT_EQ(download(other_key).status, 403);
  std::string other_signature = url;
  other_signature.back() = other_signature.back() == '0' ? '1' : '0';
  EXPECT_EQ(download(other_signature).status, 403);
  std::string longer = url;
  longer.replace(longer.find("X-Amz-Expires=600"), 17, "X-Amz-Expires=900");
  EXPECT_EQ(download(longer).status, 403);
}

TEST_F(S3BlobStoreTest, WrongSecretKeyIsAClearError) {
  S3Settings wrong = settings();
  wrong.credentials.secret_access_key = "not-the-secret";
  S3BlobStore store(wrong);
  const Error error = error_of([&] { store.put_file("k.png", source("a.png", "x"), "image/png"); });
  EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  EXPECT_NE(std::string(error.what()).find("AWS_SECRET_ACCESS_KEY"), std::string::npos)
      << error.what();
  EXPECT_EQ(std::string(error.what()).find("not-the-secret"), std::string::npos) << error.what();
  EXPECT_EQ(error_of([&] { store.check_writable(); }).code(), ErrorCode::kUnavailable);
}

TEST_F(S3BlobStoreTest, UnknownAccessKeyIsAClearError) {
  S3Settings wrong = settings();
  wrong.credentials.access_key_id = "nobody";
  S3BlobStore store(wrong);
  const Error error = error_of([&] { store.check_writable(); });
  EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  EXPECT_NE(std::string(error.what()).find("access key 'nobody'"), std::string::npos)
      << error.what();
}

TEST_F(S3BlobStoreTest, MissingBucketIsAClearError) {
  S3BlobStore store(settings("no-such-bucket"));
  for (const Error& error :
       {error_of([&] { store.put_file("k.png", source("a.png", "x"), "image/png"); }),
        error_of([&] { store.exists("k.png"); }), error_of([&] { store.check_writable(); })}) {
    EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(error.what()).find("bucket 'no-such-bucket' does not exist"),
              std::string::npos)
        << error.what();
  }
}

TEST_F(S3BlobStoreTest, CreateIfMissingMakesAPrivateBucketOnceAndKeepsAnExistingOne) {
  S3BlobStore store(settings("made-at-init"));
  EXPECT_TRUE(store.create_if_missing());
  EXPECT_FALSE(store.create_if_missing());
  EXPECT_NO_THROW(store.check_writable());
  store.put_file("k.png", source("a.png", "x"), "image/png");
  EXPECT_TRUE(store.exists("k.png"));
  // Private: a plain GET without a signature is refused.
  EXPECT_EQ(download(server_->endpoint() + "/made-at-init/k.png").status, 403);
  // The suite's own bucket was there before: left as it is.
  EXPECT_FALSE(S3BlobStore(settings()).create_if_missing());
}

TEST_F(S3BlobStoreTest, CreateIfMissingWithAWrongSecretIsAClearError) {
  S3Settings refused = settings("never-made");
  refused.credentials.secret_access_key = "not-the-secret";
  const Error error = error_of([&] { S3BlobStore(refused).create_if_missing(); });
  EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  EXPECT_NE(std::string(error.what()).find("AWS_SECRET_ACCESS_KEY"), std::string::npos)
      << error.what();
  EXPECT_EQ(std::string(error.what()).find("not-the-secret"), std::string::npos) << error.what();
}

TEST_F(S3BlobStoreTest, PresignedUrlOnThePublicEndpointIsAcceptedThere) {
  // The service reaches the server as 127.0.0.1, clients as localhost: the URL names localhost
  // and its signature holds for that host.
  S3Settings both = settings();
  both.public_endpoint = "http://localhost:" + both.endpoint.substr(both.endpoint.rfind(':') + 1);
  S3BlobStore store(both);
  store.put_file("public.png", source("a.png", "seen from outside"), "image/png");
  const std::string url = store.signed_url("public.png", 60);
  EXPECT_EQ(url.rfind(both.public_endpoint + "/", 0), 0u) << url;
  EXPECT_EQ(download(url).body, "seen from outside");
}

TEST_F(S3BlobStoreTest, CheckWritableLeavesNothingBehind) {
  S3BlobStore store(settings());
  EXPECT_NO_THROW(store.check_writable());
  const S3Response listing =
      S3Client(settings()).send({"GET", "", {{"prefix", "dreamforge/"}}, {}, ""});
  ASSERT_EQ(listing.status, 200) << listing.body;
  EXPECT_EQ(listing.body.find("writable-probe"), std::string::npos) << listing.body;
}

TEST_F(S3BlobStoreTest, MissingSourceIsAnIoError) {
  S3BlobStore store(settings());
  EXPECT_EQ(error_of([&] {
              store.put_file("k.png", (dir_.path() / "missing.png").string(), "image/png");
            }).code(),
            ErrorCode::kIo);
}

TEST_F(S3BlobStoreTest, UploadSurvivesTheServerRestarting) {
  S3Settings patient = settings();
  // Retries for about a minute (delays double from 200 ms to 5 s): a loaded machine may take many
  // seconds to start the server again.
  patient.max_attempts = 16;
  patient.first_retry_delay_ms = 200;
  S3BlobStore store(patient);
  server_->stop();
  std::thread restart([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    server_->start();
  });
  EXPECT_NO_THROW(store.put_file("restart.png", source("a.png", "back"), "image/png"));
  restart.join();
  EXPECT_EQ(download(store.signed_url("restart.png", 600)).body, "back");
}

TEST_F(S3BlobStoreTest, OpenBlobStoreTakesS3Urls) {
  ::setenv("DREAMFORGE_S3_ACCESS_KEY_ID", test::S3Server::kAccessKey, 1);
  ::setenv("DREAMFORGE_S3_SECRET_ACCESS_KEY", test::S3Server::kSecretKey, 1);
  auto store = open_blob_store(
      std::string("s3://") + kBucket + "?endpoint=" + server_->endpoint() + "&region=us-east-1",
      "unused-local-signing-secret");
  ::unsetenv("DREAMFORGE_S3_ACCESS_KEY_ID");
  ::unsetenv("DREAMFORGE_S3_SECRET_ACCESS_KEY");
  store->put_file("opened.png", source("a.png", "via url"), "image/png");
  EXPECT_TRUE(store->exists("opened.png"));
  EXPECT_EQ(download(store->signed_url("opened.png", 60)).body, "via url");
}

}  // namespace
}  // namespace df::blob

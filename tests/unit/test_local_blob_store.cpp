// Tests of the local-directory blob store: put, replace, signed URLs, keys kept inside the root.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "blob/local_blob_store.h"
#include "core/error.h"
#include "core/ids.h"
#include "test_support.h"

namespace df::blob {
namespace {

namespace fs = std::filesystem;
using test::read_text;

const std::string kSecret = "local-blob-store-test-secret";
const std::string kKey = "dreamforge/default/jobs/j1/9/20261122T130509Z_0_64x64_42.png";

using test::error_code_of;

struct SignedUrl {
  std::string key;
  int64_t expires = 0;
  std::string signature;
};

// "/v1/files/<key>?expires=<n>&sig=<hex>" taken apart.
SignedUrl parse_signed_url(const std::string& url) {
  const std::string prefix = "/v1/files/";
  EXPECT_EQ(url.rfind(prefix, 0), 0u) << url;
  const auto question = url.find('?');
  const auto ampersand = url.find("&sig=");
  EXPECT_NE(question, std::string::npos) << url;
  EXPECT_NE(ampersand, std::string::npos) << url;
  EXPECT_EQ(url.substr(question, 9), "?expires=") << url;
  SignedUrl parsed;
  parsed.key = url.substr(prefix.size(), question - prefix.size());
  parsed.expires = std::stoll(url.substr(question + 9, ampersand - question - 9));
  parsed.signature = url.substr(ampersand + 5);
  return parsed;
}

class LocalBlobStoreTest : public ::testing::Test {
 protected:
  fs::path root() const { return dir_.path() / "blobs"; }
  std::string source(const std::string& name, const std::string& content) const {
    const fs::path path = dir_.path() / name;
    std::ofstream(path, std::ios::binary) << content;
    return path.string();
  }

  test::TestDir dir_{"df_local_blobs_"};
  LocalBlobStore store_{root().string(), UrlSigner(kSecret)};
};

TEST_F(LocalBlobStoreTest, CreatesItsRoot) { EXPECT_TRUE(fs::is_directory(root())); }

TEST_F(LocalBlobStoreTest, CreateIfMissingMakesARemovedRootAgain) {
  EXPECT_FALSE(store_.create_if_missing());
  fs::remove_all(root());
  EXPECT_TRUE(store_.create_if_missing());
  EXPECT_NO_THROW(store_.check_writable());
}

TEST_F(LocalBlobStoreTest, PutFileStoresACopyUnderTheKey) {
  const std::string path = source("image.png", "first");
  EXPECT_FALSE(store_.exists(kKey));
  store_.put_file(kKey, path, "image/png");
  EXPECT_TRUE(store_.exists(kKey));
  EXPECT_EQ(read_text(root() / kKey), "first");
  EXPECT_TRUE(fs::exists(path)) << "the source stays where it was";
}

TEST_F(LocalBlobStoreTest, PutFileReplacesAnEarlierBlob) {
  store_.put_file(kKey, source("a.png", "first"), "image/png");
  store_.put_file(kKey, source("b.png", "second, longer"), "image/png");
  EXPECT_EQ(read_text(root() / kKey), "second, longer");
  int files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(root()))
    files += entry.is_regular_file();
  EXPECT_EQ(files, 1) << "no temporary files are left behind";
}

TEST_F(LocalBlobStoreTest, MissingSourceIsAnIoError) {
  EXPECT_EQ(error_code_of([&] {
              store_.put_file(kKey, (dir_.path() / "missing.png").string(), "image/png");
            }),
            ErrorCode::kIo);
  EXPECT_FALSE(store_.exists(kKey));
}

TEST_F(LocalBlobStoreTest, KeysCannotLeaveTheRoot) {
  const std::string path = source("a.png", "x");
  for (const std::string key : {"../escape.png", "a/../../escape.png", "/tmp/escape.png"}) {
    EXPECT_EQ(error_code_of([&] { store_.put_file(key, path, "image/png"); }),
              ErrorCode::kInvalidArgument)
        << key;
    EXPECT_EQ(error_code_of([&] { store_.exists(key); }), ErrorCode::kInvalidArgument) << key;
  }
  EXPECT_FALSE(fs::exists(dir_.path() / "escape.png"));
}

TEST_F(LocalBlobStoreTest, SignedUrlLeadsToTheFile) {
  store_.put_file(kKey, source("a.png", "pixels"), "image/png");
  const int64_t before = now_ms() / 1000;
  const SignedUrl url = parse_signed_url(store_.signed_url(kKey, 600));
  EXPECT_EQ(url.key, kKey);
  EXPECT_GE(url.expires, before + 600);
  EXPECT_LE(url.expires, now_ms() / 1000 + 600);
  const std::string path = store_.verified_path(url.key, url.expires, url.signature);
  EXPECT_EQ(read_text(path), "pixels");
}

TEST_F(LocalBlobStoreTest, VerifiedPathRefusesBadOrExpiredSignatures) {
  store_.put_file(kKey, source("a.png", "pixels"), "image/png");
  const SignedUrl url = parse_signed_url(store_.signed_url(kKey, 600));
  EXPECT_EQ(error_code_of([&] { store_.verified_path(kKey, url.expires + 1, url.signature); }),
            ErrorCode::kForbidden);
  EXPECT_EQ(error_code_of([&] { store_.verified_path(kKey, url.expires, "00"); }),
            ErrorCode::kForbidden);
  const SignedUrl expired = parse_signed_url(store_.signed_url(kKey, -5));
  EXPECT_EQ(
      error_code_of([&] { store_.verified_path(expired.key, expired.expires, expired.signature); }),
      ErrorCode::kForbidden);
  const SignedUrl other_secret = parse_signed_url(
      LocalBlobStore(root().string(), UrlSigner(kSecret + "2")).signed_url(kKey, 600));
  EXPECT_EQ(error_code_of(
                [&] { store_.verified_path(kKey, other_secret.expires, other_secret.signature); }),
            ErrorCode::kForbidden);
}

TEST_F(LocalBlobStoreTest, VerifiedPathOfAMissingBlobIsNotFound) {
  const SignedUrl url = parse_signed_url(store_.signed_url("nothing/here.png", 600));
  EXPECT_EQ(error_code_of([&] { store_.verified_path(url.key, url.expires, url.signature); }),
            ErrorCode::kNotFound);
}

TEST_F(LocalBlobStoreTest, SignedEscapingKeyIsStillRefused) {
  std::ofstream(dir_.path() / "secret.txt") << "secret";
  const SignedUrl url = parse_signed_url(store_.signed_url("../secret.txt", 600));
  EXPECT_EQ(error_code_of([&] { store_.verified_path(url.key, url.expires, url.signature); }),
            ErrorCode::kInvalidArgument);
}

TEST_F(LocalBlobStoreTest, CheckWritableLeavesNothingBehind) {
  EXPECT_NO_THROW(store_.check_writable());
  EXPECT_TRUE(fs::is_empty(root()));
}

TEST_F(LocalBlobStoreTest, CheckWritableReportsStorageThatCannotBeWrittenAsUnavailable) {
  fs::remove_all(root());
  std::ofstream(root()) << "a file where the folder was";
  EXPECT_EQ(error_code_of([&] { store_.check_writable(); }), ErrorCode::kUnavailable);
}

TEST_F(LocalBlobStoreTest, RootThatCannotBeCreatedIsUnavailable) {
  std::ofstream(dir_.path() / "plain-file") << "x";
  EXPECT_EQ(error_code_of([&] {
              LocalBlobStore((dir_.path() / "plain-file" / "blobs").string(), UrlSigner(kSecret));
            }),
            ErrorCode::kUnavailable);
}

TEST_F(LocalBlobStoreTest, OpenBlobStoreRefusesUrlsItDoesNotKnow) {
  const fs::path other = dir_.path() / "opened";
  auto opened = open_blob_store("file://" + other.string(), kSecret);
  ASSERT_NE(opened, nullptr);
  EXPECT_TRUE(fs::is_directory(other));
  for (const std::string url :
       {"ftp://host/data", "file://", "", "/data"}) {
    try {
      open_blob_store(url, kSecret);
      ADD_FAILURE() << "accepted '" << url << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << url;
      EXPECT_NE(std::string(e.what()).find("DREAMFORGE_STORAGE_URL"), std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace df::blob

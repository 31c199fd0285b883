// Download verification and secrecy: file digests, git blob ids, token redaction.
#include <gtest/gtest.h>

#include <fstream>

#include "download/file_digest.h"
#include "download/redaction.h"
#include "test_support.h"

namespace df::download {
namespace {

class DownloadHashes : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& bytes) {
    const auto path = (dir_.path() / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  test::TestDir dir_{"df_download_hashes_"};
};

TEST_F(DownloadHashes, DigestsFilesLikeShaSumAndGit) {
  const auto path = write("hello.txt", "hello\n");
  const auto digest = digest_file(path, /*with_git_blob_sha1=*/true);
  EXPECT_EQ(digest.size, 6);
  EXPECT_EQ(digest.sha256, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
  // `git hash-object` of the same bytes.
  EXPECT_EQ(digest.git_blob_sha1, "ce013625030ba8dba906f756967f9e9ca394464a");
  EXPECT_EQ(git_blob_sha1("hello\n"), digest.git_blob_sha1);
  EXPECT_EQ(digest_file(path, false).git_blob_sha1, "");
}

TEST_F(DownloadHashes, EmptyFilesHaveTheirWellKnownDigests) {
  const auto digest = digest_file(write("empty", ""), true);
  EXPECT_EQ(digest.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(digest.git_blob_sha1, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
}

TEST_F(DownloadHashes, MatchesPublishedHashesOfEitherKindInAnyCase) {
  const auto digest = digest_file(write("hello.txt", "hello\n"), true);
  EXPECT_TRUE(digest_matches(
      digest,
      {DigestKind::kSha256, "5891B5B522D5DF086D0FF0B110FBD9D21BB4FC7163AF34D08286A2E846F6BE03"}));
  EXPECT_TRUE(digest_matches(
      digest, {DigestKind::kGitBlobSha1, "ce013625030ba8dba906f756967f9e9ca394464a"}));
  EXPECT_FALSE(digest_matches(digest, {DigestKind::kSha256, "00"}));
  EXPECT_FALSE(digest_matches(digest, {DigestKind::kSha256, ""}));
  const auto sha256_only = digest_file(write("again.txt", "hello\n"), false);
  EXPECT_FALSE(digest_matches(sha256_only, {DigestKind::kGitBlobSha1, ""}));
}

TEST_F(DownloadHashes, UnreadableFilesAreIoErrors) {
  EXPECT_EQ(test::error_code_of([&] { digest_file((dir_.path() / "absent").string(), false); }),
            ErrorCode::kIo);
}

TEST(DownloadRedaction, ReplacesEverySecretAndIgnoresEmptyOnes) {
  const Redactor redact({"hf_secret", "", "civ"});
  EXPECT_EQ(redact("token hf_secret and hf_secret, civ!"), "token *** and ***, ***!");
  EXPECT_EQ(redact("nothing here"), "nothing here");
  EXPECT_EQ(Redactor({""})("abc"), "abc");
}

TEST(DownloadRedaction, ReplacesLongerSecretsWhole) {
  const Redactor redact({"abc", "abcdef"});
  EXPECT_EQ(redact("x abcdef y abc"), "x *** y ***");
}

TEST(DownloadRedaction, UrlsLoseCredentialsAndQueries) {
  EXPECT_EQ(redact_url("https://user:pw@host.example/a/b?token=s3cret&x=1"),
            "https://host.example/a/b");
  EXPECT_EQ(redact_url("https://cdn.example/file.safetensors?X-Amz-Signature=abc#frag"),
            "https://cdn.example/file.safetensors");
  EXPECT_EQ(redact_url("http://127.0.0.1:8080/api/models/x@y"),
            "http://127.0.0.1:8080/api/models/x@y");
}

}  // namespace
}  // namespace df::download

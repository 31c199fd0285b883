// Tests of SigV4 signing against the signatures AWS publishes (its test suite and the S3 examples).
#include <gtest/gtest.h>

#include <string>

#include "blob/sigv4.h"
#include "core/sha256.h"

namespace df::blob::sigv4 {
namespace {

const std::string kEmptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// The suite's fixed inputs: credentials, scope and time.
const Credentials kSuiteCredentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
const Scope kSuiteScope{"us-east-1", "service"};
const std::string kSuiteDate = "20150830T123600Z";

// The S3 examples' inputs.
const Credentials kS3Credentials{"AKIAIOSFODNN7EXAMPLE",
                                 "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"};
const Scope kS3Scope{"us-east-1", "s3"};
const std::string kS3Date = "20130524T000000Z";
const std::string kS3Host = "examplebucket.s3.amazonaws.com";

Request suite_request(const std::string& method, const std::string& path, Pairs query = {}) {
  return Request{method,
                 path,
                 std::move(query),
                 {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", kSuiteDate}},
                 kEmptyHash};
}

TEST(SigV4, SuiteGetVanilla) {
  EXPECT_EQ(authorization(suite_request("GET", "/"), kSuiteCredentials, kSuiteScope, kSuiteDate),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4, SuitePostVanilla) {
  EXPECT_EQ(signature(suite_request("POST", "/"), kSuiteCredentials, kSuiteScope, kSuiteDate),
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

TEST(SigV4, SuiteQueryIsSortedByName) {
  const Request request = suite_request("GET", "/", {{"Param2", "value2"}, {"Param1", "value1"}});
  EXPECT_EQ(canonical_query(request.query), "Param1=value1&Param2=value2");
  EXPECT_EQ(signature(request, kSuiteCredentials, kSuiteScope, kSuiteDate),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

TEST(SigV4, SuiteUtf8Path) {
  const std::string path = "/" + uri_encode("\xE1\x88\xB4", false);
  EXPECT_EQ(path, "/%E1%88%B4");
  EXPECT_EQ(signature(suite_request("GET", path), kSuiteCredentials, kSuiteScope, kSuiteDate),
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
}

TEST(SigV4, S3GetObjectWithRange) {
  const Request request{"GET",
                        "/test.txt",
                        {},
                        {{"Host", kS3Host},
                         {"Range", "bytes=0-9"},
                         {"x-amz-content-sha256", kEmptyHash},
                         {"x-amz-date", kS3Date}},
                        kEmptyHash};
  const std::string canonical = canonical_request(request);
  EXPECT_EQ(sha256_hex(canonical.data(), canonical.size()),
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(signed_header_names(request), "host;range;x-amz-content-sha256;x-amz-date");
  EXPECT_EQ(signature(request, kS3Credentials, kS3Scope, kS3Date),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4, S3PutObjectWithAnEncodedKey) {
  const std::string body = "Welcome to Amazon S3.";
  const std::string body_hash = sha256_hex(body.data(), body.size());
  const Request request{"PUT",
                        "/" + uri_encode("test$file.text", false),
                        {},
                        {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                         {"Host", kS3Host},
                         {"x-amz-date", kS3Date},
                         {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                         {"x-amz-content-sha256", body_hash}},
                        body_hash};
  EXPECT_EQ(request.path, "/test%24file.text");
  EXPECT_EQ(signature(request, kS3Credentials, kS3Scope, kS3Date),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4, S3ListObjectsWithQuery) {
  const Request request{
      "GET",
      "/",
      {{"prefix", "J"}, {"max-keys", "2"}},
      {{"Host", kS3Host}, {"x-amz-content-sha256", kEmptyHash}, {"x-amz-date", kS3Date}},
      kEmptyHash};
  EXPECT_EQ(signature(request, kS3Credentials, kS3Scope, kS3Date),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4, S3PresignedGet) {
  const Request request{"GET", "/test.txt", {}, {{"Host", kS3Host}}, ""};
  EXPECT_EQ(presigned_query(request, kS3Credentials, kS3Scope, kS3Date, 86400),
            "X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
            "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
            "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

TEST(SigV4, HeaderValuesAreTrimmedAndRepeatedNamesJoined) {
  const Request request{
      "GET", "/", {}, {{"My-Header", "  a   b  "}, {"host", "h"}, {"my-header", "c"}}, kEmptyHash};
  EXPECT_EQ(canonical_request(request),
            "GET\n/\n\nhost:h\nmy-header:a b,c\n\nhost;my-header\n" + kEmptyHash);
}

TEST(SigV4, UriEncodeKeepsOnlyUnreservedCharacters) {
  EXPECT_EQ(uri_encode("A-z_0.9~", true), "A-z_0.9~");
  EXPECT_EQ(uri_encode("a b+c=d&e", true), "a%20b%2Bc%3Dd%26e");
  EXPECT_EQ(uri_encode("dir/file name.png", false), "dir/file%20name.png");
  EXPECT_EQ(uri_encode("dir/file", true), "dir%2Ffile");
}

TEST(SigV4, ValuelessQueryParametersGetAnEqualsSign) {
  EXPECT_EQ(canonical_query({{"uploads", ""}}), "uploads=");
  EXPECT_EQ(canonical_query({{"uploadId", "a/b"}, {"partNumber", "2"}}),
            "partNumber=2&uploadId=a%2Fb");
}

TEST(SigV4, AmzDateIsUtc) {
  EXPECT_EQ(amz_date(1440938160), "20150830T123600Z");
  EXPECT_EQ(amz_date(0), "19700101T000000Z");
}

}  // namespace
}  // namespace df::blob::sigv4

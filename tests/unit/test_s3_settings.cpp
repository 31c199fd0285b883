// Tests of reading "s3://bucket?endpoint=..." storage URLs and their credentials.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "blob/s3_settings.h"
#include "test_support.h"

namespace df::blob {
namespace {

using test::error_of;

EnvironmentLookup environment(std::map<std::string, std::string> variables) {
  return [variables = std::move(variables)](const std::string& name) -> std::optional<std::string> {
    const auto found = variables.find(name);
    if (found == variables.end()) return std::nullopt;
    return found->second;
  };
}

const EnvironmentLookup kAwsKeys =
    environment({{"AWS_ACCESS_KEY_ID", "AKID"}, {"AWS_SECRET_ACCESS_KEY", "secret"}});

TEST(S3Settings, CustomEndpointIsPathStyleWithTheDefaultRegion) {
  const S3Settings settings =
      parse_s3_storage_url("s3://artifacts?endpoint=http://127.0.0.1:9000", kAwsKeys);
  EXPECT_EQ(settings.bucket, "artifacts");
  EXPECT_EQ(settings.endpoint, "http://127.0.0.1:9000");
  EXPECT_TRUE(settings.path_style);
  EXPECT_EQ(settings.region, "us-east-1");
  EXPECT_EQ(settings.credentials.access_key_id, "AKID");
  EXPECT_EQ(settings.credentials.secret_access_key, "secret");
}

TEST(S3Settings, RegionAndAnEncodedEndpoint) {
  const S3Settings settings = parse_s3_storage_url(
      "s3://my-bucket?region=eu-west-1&endpoint=https%3A%2F%2Fminio.example.org%2F", kAwsKeys);
  EXPECT_EQ(settings.endpoint, "https://minio.example.org");
  EXPECT_EQ(settings.region, "eu-west-1");
}

TEST(S3Settings, PublicEndpointForPresignedUrls) {
  const S3Settings settings = parse_s3_storage_url(
      "s3://artifacts?endpoint=http://minio:9000&public_endpoint=http%3A%2F%2F127.0.0.1%3A19000",
      kAwsKeys);
  EXPECT_EQ(settings.endpoint, "http://minio:9000");
  EXPECT_EQ(settings.public_endpoint, "http://127.0.0.1:19000");
  EXPECT_TRUE(parse_s3_storage_url("s3://artifacts?endpoint=http://minio:9000", kAwsKeys)
                  .public_endpoint.empty());
  EXPECT_THROW(parse_s3_storage_url("s3://artifacts?public_endpoint=ftp://x", kAwsKeys), Error);
}

TEST(S3Settings, WithoutAnEndpointItIsAwsVirtualHosted) {
  const S3Settings settings = parse_s3_storage_url("s3://my-bucket?region=eu-west-1", kAwsKeys);
  EXPECT_EQ(settings.endpoint, "https://my-bucket.s3.eu-west-1.amazonaws.com");
  EXPECT_FALSE(settings.path_style);
  const S3Settings dotted = parse_s3_storage_url("s3://my.bucket", kAwsKeys);
  EXPECT_EQ(dotted.endpoint, "https://s3.us-east-1.amazonaws.com");
  EXPECT_TRUE(dotted.path_style);
}

TEST(S3Settings, DreamForgeCredentialsComeFirst) {
  const S3Settings settings = parse_s3_storage_url(
      "s3://artifacts", environment({{"AWS_ACCESS_KEY_ID", "aws"},
                                     {"AWS_SECRET_ACCESS_KEY", "aws-secret"},
                                     {"DREAMFORGE_S3_ACCESS_KEY_ID", "df"},
                                     {"DREAMFORGE_S3_SECRET_ACCESS_KEY", "df-secret"}}));
  EXPECT_EQ(settings.credentials.access_key_id, "df");
  EXPECT_EQ(settings.credentials.secret_access_key, "df-secret");
}

TEST(S3Settings, MissingCredentialsNameTheVariable) {
  const Error error = error_of([] {
    parse_s3_storage_url("s3://artifacts", environment({{"AWS_ACCESS_KEY_ID", "AKID"}}));
  });
  EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(std::string(error.what()).find("AWS_SECRET_ACCESS_KEY"), std::string::npos)
      << error.what();
}

TEST(S3Settings, BadUrlsAreRefusedNamingTheVariable) {
  for (const std::string url :
       {"s3://", "s3://Upper?endpoint=http://h", "s3://ab", "s3://bucket/prefix",
        "s3://bucket?endpoint=ftp://h", "s3://bucket?endpoint=http://h/path",
        "s3://bucket?endpoint=", "s3://bucket?color=red", "s3://-bucket", "s3:bucket"}) {
    const Error error = error_of([&] { parse_s3_storage_url(url, kAwsKeys); });
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument) << url;
    EXPECT_NE(std::string(error.what()).find("DREAMFORGE_STORAGE_URL"), std::string::npos)
        << error.what();
  }
}

TEST(S3Settings, SecretsStayOutOfErrors) {
  const Error error =
      error_of([] { parse_s3_storage_url("s3://bucket?endpoint=ftp://h", kAwsKeys); });
  EXPECT_EQ(std::string(error.what()).find("secret"), std::string::npos) << error.what();
}

}  // namespace
}  // namespace df::blob

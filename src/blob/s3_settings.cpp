// Reads the S3 storage URL and the credentials from the environment.
#include "blob/s3_settings.h"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <cctype>
#include <cstdlib>

#include "core/error.h"

namespace df::blob {

namespace {

constexpr const char* kVariable = "DREAMFORGE_STORAGE_URL";

Error bad_url(const std::string& url, const std::string& why) {
  return Error(ErrorCode::kInvalidArgument,
               std::string(kVariable) + ": '" + url + "' is not a usable S3 storage URL: " + why);
}

// S3's rules: 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a
// letter or digit.
bool is_valid_bucket_name(const std::string& name) {
  if (name.size() < 3 || name.size() > 63) return false;
  for (const unsigned char c : name) {
    if (!(std::islower(c) || std::isdigit(c) || c == '.' || c == '-')) return false;
  }
  return std::isalnum(static_cast<unsigned char>(name.front())) &&
         std::isalnum(static_cast<unsigned char>(name.back()));
}

// "http://host:port" from the endpoint parameter; refuses other schemes, paths and queries.
std::string parse_endpoint(const std::string& url, const std::string& endpoint) {
  const auto parsed = boost::urls::parse_absolute_uri(endpoint);
  if (!parsed || (parsed->scheme() != "http" && parsed->scheme() != "https") ||
      parsed->encoded_host().empty()) {
    throw bad_url(url, "endpoint '" + endpoint + "' must be http://host[:port] or https://...");
  }
  if ((!parsed->encoded_path().empty() && parsed->encoded_path() != "/") || parsed->has_query() ||
      parsed->has_userinfo()) {
    throw bad_url(url, "endpoint '" + endpoint + "' must have no path, query or user name");
  }
  return std::string(parsed->scheme()) + "://" + std::string(parsed->encoded_authority());
}

std::string required_variable(const EnvironmentLookup& environment, const std::string& preferred,
                              const std::string& fallback) {
  for (const std::string& name : {preferred, fallback}) {
    if (auto value = environment(name); value && !value->empty()) return *value;
  }
  throw Error(ErrorCode::kInvalidArgument, std::string(kVariable) +
                                               ": S3 storage needs credentials; set " + fallback +
                                               " (or " + preferred + ")");
}

}  // namespace

S3Settings parse_s3_storage_url(const std::string& url, const EnvironmentLookup& environment) {
  const auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed || parsed->scheme() != "s3") throw bad_url(url, "expected s3://bucket?endpoint=...");
  S3Settings settings;
  settings.bucket = std::string(parsed->host());
  if (!is_valid_bucket_name(settings.bucket)) {
    throw bad_url(url, "'" + settings.bucket +
                           "' is not a bucket name (3-63 lowercase letters, digits, '.', '-')");
  }
  if (!parsed->encoded_path().empty() && parsed->encoded_path() != "/") {
    throw bad_url(url, "a path after the bucket is not supported");
  }
  std::string endpoint;
  for (const auto& param : parsed->params()) {
    if (param.key == "endpoint") {
      endpoint = parse_endpoint(url, param.value);
    } else if (param.key == "public_endpoint") {
      settings.public_endpoint = parse_endpoint(url, param.value);
    } else if (param.key == "region" && !param.value.empty()) {
      settings.region = param.value;
    } else {
      throw bad_url(url, "unknown or empty parameter '" + std::string(param.key) +
                             "' (known: endpoint, region, public_endpoint)");
    }
  }
  if (!endpoint.empty()) {
    settings.endpoint = endpoint;
  } else if (settings.bucket.find('.') == std::string::npos) {
    // AWS itself: virtual-hosted requests (a dotted bucket name would not match the certificate).
    settings.endpoint = "https://" + settings.bucket + ".s3." + settings.region + ".amazonaws.com";
    settings.path_style = false;
  } else {
    settings.endpoint = "https://s3." + settings.region + ".amazonaws.com";
  }
  settings.credentials.access_key_id =
      required_variable(environment, "DREAMFORGE_S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID");
  settings.credentials.secret_access_key =
      required_variable(environment, "DREAMFORGE_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY");
  return settings;
}

std::optional<std::string> process_environment(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

}  // namespace df::blob

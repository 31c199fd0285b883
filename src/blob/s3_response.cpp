// S3 answers: XML element text and the user-facing error of a failed request.
#include "blob/s3_response.h"

namespace df::blob {

std::string xml_element_text(std::string_view xml, std::string_view tag) {
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  const size_t start = xml.find(open);
  if (start == std::string_view::npos) return "";
  const size_t end = xml.find(close, start + open.size());
  if (end == std::string_view::npos) return "";
  return std::string(xml.substr(start + open.size(), end - start - open.size()));
}

Error missing_bucket_error(const S3Settings& settings) {
  return Error(ErrorCode::kUnavailable,
               "S3 bucket '" + settings.bucket + "' does not exist at " + settings.endpoint +
                   "; create it (keep it private) or fix DREAMFORGE_STORAGE_URL",
               {{"bucket", settings.bucket}, {"endpoint", settings.endpoint}});
}

Error s3_error(const S3Response& response, const S3Settings& settings, const std::string& action) {
  const std::string code = xml_element_text(response.body, "Code");
  const std::string server_message = xml_element_text(response.body, "Message");
  const std::string where = "bucket '" + settings.bucket + "' at " + settings.endpoint;
  const nlohmann::json details = {{"bucket", settings.bucket},
                                  {"endpoint", settings.endpoint},
                                  {"status", response.status},
                                  {"s3_code", code}};
  if (code == "NoSuchBucket") return missing_bucket_error(settings);
  std::string message;
  if (code == "InvalidAccessKeyId") {
    message = "S3 at " + settings.endpoint + " does not know the access key '" +
              settings.credentials.access_key_id +
              "'; check AWS_ACCESS_KEY_ID (or DREAMFORGE_S3_ACCESS_KEY_ID)";
  } else if (code == "SignatureDoesNotMatch") {
    message = "S3 at " + settings.endpoint + " refused the secret key of access key '" +
              settings.credentials.access_key_id +
              "'; check AWS_SECRET_ACCESS_KEY (or DREAMFORGE_S3_SECRET_ACCESS_KEY)";
  } else if (response.status == 403) {
    message = "S3 refused access to " + where + " (to " + action +
              "); check the credentials and the bucket's permissions";
  } else {
    message = "S3 could not " + action + " in " + where + ": HTTP " +
              std::to_string(response.status) + (code.empty() ? "" : " " + code) +
              (server_message.empty() ? "" : ": " + server_message);
  }
  return Error(ErrorCode::kUnavailable, message, details);
}

}  // namespace df::blob

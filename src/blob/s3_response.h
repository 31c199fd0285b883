// An S3 server's answer, the text of its XML elements, and the error a failed request means.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "blob/s3_settings.h"
#include "core/error.h"

namespace df::blob {

struct S3Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;

  bool ok() const { return status >= 200 && status < 300; }
};

// The text of the first <tag>...</tag> in an XML body ("" when there is none). S3's answers are
// small documents whose values need no entity decoding beyond what this returns.
std::string xml_element_text(std::string_view xml, std::string_view tag);

// Error(kUnavailable) saying the configured bucket does not exist.
Error missing_bucket_error(const S3Settings& settings);

// The error a failed answer to `action` ("upload 'key'") means, naming the bucket and endpoint:
// kUnavailable for a missing bucket, refused credentials, server errors; never the secret.
Error s3_error(const S3Response& response, const S3Settings& settings, const std::string& action);

}  // namespace df::blob

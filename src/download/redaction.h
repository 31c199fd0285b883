// Keeps access tokens out of everything Dream Forge prints or writes about a download.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace df::download {

class Redactor {
 public:
  // Empty secrets are ignored.
  explicit Redactor(std::vector<std::string> secrets);
  // `text` with every occurrence of a secret replaced by "***".
  std::string operator()(std::string_view text) const;

 private:
  std::vector<std::string> secrets_;
};

// `url` without its user info and query string (where signed and token-bearing URLs keep their
// credentials), for messages.
std::string redact_url(std::string_view url);

}  // namespace df::download

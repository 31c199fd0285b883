// Token redaction.
#include "download/redaction.h"

#include <algorithm>

namespace df::download {

Redactor::Redactor(std::vector<std::string> secrets) {
  for (auto& secret : secrets) {
    if (!secret.empty()) secrets_.push_back(std::move(secret));
  }
  // Longest first, so a secret containing another is replaced whole.
  std::sort(secrets_.begin(), secrets_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string Redactor::operator()(std::string_view text) const {
  std::string out(text);
  for (const auto& secret : secrets_) {
    for (auto at = out.find(secret); at != std::string::npos; at = out.find(secret, at + 3)) {
      out.replace(at, secret.size(), "***");
    }
  }
  return out;
}

std::string redact_url(std::string_view url) {
  std::string out(url.substr(0, url.find_first_of("?#")));
  const auto scheme_end = out.find("://");
  if (scheme_end == std::string::npos) return out;
  const auto authority_start = scheme_end + 3;
  const auto authority_end = std::min(out.find('/', authority_start), out.size());
  const auto at = out.rfind('@', authority_end);
  if (at != std::string::npos && at >= authority_start)
    out.erase(authority_start, at + 1 - authority_start);
  return out;
}

}  // namespace df::download

// Correlation ids: the client's X-Request-ID when it is sane, else a fresh random one.
#include "http/correlation_id.h"

#include <algorithm>

#include "core/ids.h"

namespace df::http {

bool is_sane_correlation_id(std::string_view id) {
  auto allowed = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
  };
  return !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), allowed);
}

std::string correlation_id_for(std::string_view client_id) {
  return is_sane_correlation_id(client_id) ? std::string(client_id) : random_hex(16);
}

}  // namespace df::http

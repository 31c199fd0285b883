// Correlation ids: the client's X-Request-ID when it is sane, else a fresh random one.
#pragma once

#include <string>
#include <string_view>

namespace df::http {

// True for 1..128 characters of [A-Za-z0-9._:-].
bool is_sane_correlation_id(std::string_view id);
// `client_id` when it is sane, else 32 fresh random hex characters.
std::string correlation_id_for(std::string_view client_id);

}  // namespace df::http

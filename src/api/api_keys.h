// API keys: how a key is made, what of it is stored (its SHA-256 only), and the key's scopes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "store/store.h"

namespace df::api {

inline constexpr std::string_view kAdminScope = "admin";
inline constexpr std::string_view kUserScope = "user";

// A key as `keys create` hands it out: `key` is shown once and never stored.
struct NewApiKey {
  std::string key;  // "dfk_<id>_<secret>"
  store::ApiKeyRecord record;
};

// A fresh key for `user`, with its own webhook secret (the key's name when empty). Throws Error(kInvalidArgument) for an empty
// or over-long name, a user name with characters other than letters, digits, '-', '_' and '.',
// or a scope other than "admin" and "user".
NewApiKey make_api_key(const std::string& name, const std::string& user, const std::string& scope);

// The stored form of a key: lowercase hex SHA-256.
std::string api_key_hash(std::string_view key);

// The key in an "Authorization: Bearer KEY" header value; nullopt for another scheme or none.
std::optional<std::string> bearer_token(std::string_view authorization);

}  // namespace df::api

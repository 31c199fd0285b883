// API keys: making them, hashing them, reading them from an Authorization header.
#include "api/api_keys.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "core/ids.h"
#include "core/sha256.h"
#include "webhooks/webhook_signature.h"

namespace df::api {
namespace {

constexpr size_t kMaxNameLength = 100;

bool is_user_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

}  // namespace

NewApiKey make_api_key(const std::string& name, const std::string& user, const std::string& scope) {
  if (name.empty() || name.size() > kMaxNameLength) {
    throw Error(ErrorCode::kInvalidArgument, "a key needs a name of 1 to 100 characters");
  }
  const std::string owner = user.empty() ? name : user;
  // User names become artifact key segments (dreamforge/{user}/jobs/...): nothing path-like.
  if (owner.size() > kMaxNameLength || owner == "." || owner == ".." ||
      !std::all_of(owner.begin(), owner.end(), is_user_name_char)) {
    throw Error(ErrorCode::kInvalidArgument,
                "user name '" + owner + "' must be 1 to 100 letters, digits, '-', '_' or '.'" +
                    (user.empty() ? " (the key's name is the user unless --user is given)" : ""));
  }
  if (scope != kAdminScope && scope != kUserScope) {
    throw Error(ErrorCode::kInvalidArgument, "scope must be 'admin' or 'user', not '" + scope + "'");
  }
  NewApiKey made;
  made.record.id = random_hex(8);
  made.key = "dfk_" + made.record.id + "_" + random_hex(32);
  made.record.name = name;
  made.record.user = owner;
  made.record.scope = scope;
  made.record.secret_hash = api_key_hash(made.key);
  made.record.created_ms = now_ms();
  made.record.webhook_secret = webhooks::generate_webhook_secret();
  return made;
}

std::string api_key_hash(std::string_view key) { return sha256_hex(key.data(), key.size()); }

std::optional<std::string> bearer_token(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return std::nullopt;
  }
  std::string_view token = authorization.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  if (token.empty()) return std::nullopt;
  return std::string(token);
}

}  // namespace df::api

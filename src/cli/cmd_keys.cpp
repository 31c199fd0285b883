// `dreamforge keys create|list|revoke`: makes API keys (printed once, stored as a hash), lists
// them and revokes them, in the database the service reads.
#include "cli/cmd_keys.h"

#include <iomanip>
#include <iostream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "api/api_keys.h"
#include "cli/audit_trail.h"
#include "cli/service_options.h"
#include "core/error.h"
#include "core/ids.h"
#include "store/store.h"

namespace df::cli {
namespace {

struct KeysOptions {
  ServiceOptions service;
  std::string name;
  std::string user;
  std::string scope = "user";
  std::string id;
  int jobs_per_minute = 0;
  int max_concurrent_jobs = 0;
  bool json = false;
};

std::unique_ptr<store::Store> open_database(ServiceOptions options) {
  options.resolve_paths();
  return store::open_store(options.database_url);
}

nlohmann::ordered_json key_json(const store::ApiKeyRecord& key) {
  return {{"id", key.id},
          {"name", key.name},
          {"user", key.user},
          {"scope", key.scope},
          {"jobs_per_minute", key.jobs_per_minute},
          {"max_concurrent_jobs", key.max_concurrent_jobs},
          {"created_at", iso8601_utc(key.created_ms)},
          {"revoked_at", key.revoked_ms ? nlohmann::json(iso8601_utc(key.revoked_ms)) : nullptr}};
}

void create_key(const KeysOptions& options) {
  api::NewApiKey made = api::make_api_key(options.name, options.user, options.scope);
  made.record.jobs_per_minute = options.jobs_per_minute;
  made.record.max_concurrent_jobs = options.max_concurrent_jobs;
  auto store = open_database(options.service);
  store->create_api_key(made.record);
  record_admin_action(*store, "key.create", made.record.id,
                      {{"name", made.record.name}, {"user", made.record.user},
                       {"scope", made.record.scope},
                       {"jobs_per_minute", made.record.jobs_per_minute},
                       {"max_concurrent_jobs", made.record.max_concurrent_jobs}});
  if (options.json) {
    auto body = key_json(made.record);
    body["key"] = made.key;
    body["webhook_secret"] = made.record.webhook_secret;
    std::cout << body.dump() << '\n';
    return;
  }
  std::cout << made.key << '\n';
  std::cerr << "created " << made.record.scope << " key " << made.record.id << " ('"
            << made.record.name << "', user " << made.record.user
            << "); the key above is shown only now: only its hash is stored\n"
            << "its jobs' webhooks are signed with " << made.record.webhook_secret
            << " (dreamforge keys webhook-secret " << made.record.id << " shows it again)\n";
}

void list_keys(const KeysOptions& options) {
  const auto keys = open_database(options.service)->list_api_keys();
  if (options.json) {
    auto body = nlohmann::ordered_json::array();
    for (const auto& key : keys) body.push_back(key_json(key));
    std::cout << body.dump() << '\n';
    return;
  }
  if (keys.empty()) {
    std::cout << "no API keys: every client of a loopback service is admin\n";
    return;
  }
  auto limit = [](int value) { return value > 0 ? std::to_string(value) : std::string("-"); };
  std::cout << std::left << std::setw(18) << "ID" << std::setw(24) << "NAME" << std::setw(20)
            << "USER" << std::setw(7) << "SCOPE" << std::setw(9) << "JOBS/MIN" << std::setw(8)
            << "AT ONCE" << std::setw(26) << "CREATED" << "STATUS\n";
  for (const auto& key : keys) {
    std::cout << std::setw(18) << key.id << std::setw(24) << key.name << std::setw(20) << key.user
              << std::setw(7) << key.scope << std::setw(9) << limit(key.jobs_per_minute)
              << std::setw(8) << limit(key.max_concurrent_jobs) << std::setw(26)
              << iso8601_utc(key.created_ms)
              << (key.revoked_ms ? "revoked " + iso8601_utc(key.revoked_ms) : "active") << '\n';
  }
}

void revoke_key(const KeysOptions& options) {
  auto store = open_database(options.service);
  if (!store->revoke_api_key(options.id)) {
    throw Error(ErrorCode::kNotFound, "no API key with id '" + options.id + "' (see: dreamforge keys list)");
  }
  record_admin_action(*store, "key.revoke", options.id);
  std::cout << "revoked key " << options.id << '\n';
}

void show_webhook_secret(const KeysOptions& options) {
  const auto key = open_database(options.service)->get_api_key(options.id);
  if (!key) {
    throw Error(ErrorCode::kNotFound, "no API key with id '" + options.id + "' (see: dreamforge keys list)");
  }
  if (key->webhook_secret.empty()) {
    throw Error(ErrorCode::kNotFound,
                "key " + options.id + " was made before keys had webhook secrets: its jobs' "
                "webhooks are signed with DREAMFORGE_WEBHOOK_SECRET");
  }
  std::cout << key->webhook_secret << '\n';
}

}  // namespace

void register_keys_commands(CLI::App& app) {
  auto options = std::make_shared<KeysOptions>();
  CLI::App* keys = app.add_subcommand("keys", "API keys: who may use the service");
  keys->require_subcommand(1);

  CLI::App* create = keys->add_subcommand("create", "Make a key and print it (once)");
  create->add_option("--name", options->name, "What the key is for")->required();
  create->add_option("--user", options->user, "Whose jobs it makes and sees (default: the name)");
  create->add_option("--scope", options->scope, "admin (everything) or user (own jobs)")
      ->capture_default_str();
  create->add_option("--jobs-per-minute", options->jobs_per_minute,
                     "New jobs its user may make per minute (0: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  create->add_option("--max-concurrent-jobs", options->max_concurrent_jobs,
                     "Its user's queued and running jobs at most (0: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  create->add_flag("--json", options->json, "Print the key and its record as JSON");
  add_database_options(*create, options->service);
  create->callback([options] { create_key(*options); });

  CLI::App* list = keys->add_subcommand("list", "Show every key (never the keys themselves)");
  list->add_flag("--json", options->json, "As a JSON array");
  add_database_options(*list, options->service);
  list->callback([options] { list_keys(*options); });

  CLI::App* revoke = keys->add_subcommand("revoke", "Revoke a key: it stops working at once");
  revoke->add_option("id", options->id, "The key's id (keys list)")->required();
  add_database_options(*revoke, options->service);
  revoke->callback([options] { revoke_key(*options); });

  CLI::App* secret = keys->add_subcommand(
      "webhook-secret", "Print the secret that signs the webhooks of a key's jobs");
  secret->add_option("id", options->id, "The key's id (keys list)")->required();
  add_database_options(*secret, options->service);
  secret->callback([options] { show_webhook_secret(*options); });
}

}  // namespace df::cli

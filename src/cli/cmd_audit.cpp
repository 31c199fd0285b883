// `dreamforge audit [--limit N] [--json]`: who changed keys and models, and when.
#include "cli/cmd_audit.h"

#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/service_options.h"
#include "core/ids.h"
#include "core/json_text.h"
#include "store/store.h"

namespace df::cli {
namespace {

struct AuditOptions {
  ServiceOptions service;
  int limit = 50;
  bool json = false;
};

void show_audit(AuditOptions options) {
  options.service.resolve_paths();
  const auto entries = store::open_store(options.service.database_url)->list_audit(options.limit);
  if (options.json) {
    auto list = nlohmann::ordered_json::array();
    for (const auto& entry : entries) {
      list.push_back({{"id", entry.id},
                      {"at", iso8601_utc(entry.created_ms)},
                      {"actor", entry.actor},
                      {"action", entry.action},
                      {"target", entry.target},
                      {"details", entry.details}});
    }
    std::cout << list.dump() << '\n';
    return;
  }
  if (entries.empty()) std::cout << "no admin actions recorded\n";
  for (const auto& entry : entries) {
    std::cout << iso8601_utc(entry.created_ms) << "  " << entry.actor << "  " << entry.action
              << "  " << entry.target;
    if (!entry.details.empty()) std::cout << "  " << dump_json(entry.details);
    std::cout << '\n';
  }
}

}  // namespace

void register_audit_command(CLI::App& app) {
  auto options = std::make_shared<AuditOptions>();
  CLI::App* command = app.add_subcommand(
      "audit", "Show the admin actions recorded (key changes, model downloads, removals, enabling)");
  command->add_option("--limit", options->limit, "How many, newest first")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  command->add_flag("--json", options->json, "As a JSON array");
  add_database_options(*command, options->service);
  command->callback([options] { show_audit(*options); });
}

}  // namespace df::cli

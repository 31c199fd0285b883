// Admin actions of the CLI into the audit log, under the name of the Unix user who ran them.
#include "cli/audit_trail.h"

#include <pwd.h>
#include <unistd.h>

namespace df::cli {

std::string cli_actor() {
  if (const passwd* user = ::getpwuid(::geteuid()); user != nullptr && user->pw_name != nullptr) {
    return std::string("cli:") + user->pw_name;
  }
  return "cli:uid " + std::to_string(::geteuid());
}

void record_admin_action(store::Store& store, const std::string& action, const std::string& target,
                         nlohmann::json details) {
  store::AuditEntry entry;
  entry.actor = cli_actor();
  entry.action = action;
  entry.target = target;
  entry.details = std::move(details);
  store.append_audit(entry);
}

}  // namespace df::cli

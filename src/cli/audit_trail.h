// Admin actions of the CLI (key changes, model downloads, removals, enabling) into the audit log.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "store/store.h"

namespace df::cli {

// "cli:<unix user>": who runs this command.
std::string cli_actor();

// Appends the action to the store's audit log as done by cli_actor(). `details` must hold no
// secrets.
void record_admin_action(store::Store& store, const std::string& action, const std::string& target,
                         nlohmann::json details = nlohmann::json::object());

}  // namespace df::cli

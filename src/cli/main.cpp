// dreamforge: command-line entry point; dispatches to subcommands and turns errors into exit codes.
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/cmd_audit.h"
#include "cli/cmd_generate.h"
#include "cli/cmd_jobs.h"
#include "cli/cmd_keys.h"
#include "cli/cmd_migrate.h"
#include "cli/cmd_model.h"
#include "cli/cmd_serve.h"
#include "cli/cmd_storage.h"
#include "cli/service_options.h"
#include "core/error.h"
#include "tui/tui_command.h"

int main(int argc, char** argv) {
  df::cli::load_dotenv();
  CLI::App app{"Dream Forge: self-hosted image generation"};
  app.require_subcommand(1);
  df::cli::register_audit_command(app);
  df::cli::register_generate_command(app);
  df::cli::register_jobs_commands(app);
  df::cli::register_keys_commands(app);
  df::cli::register_migrate_command(app);
  df::cli::register_model_commands(app);
  df::cli::register_service_commands(app);
  df::cli::register_storage_commands(app);
  df::tui::register_tui_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const df::Error& e) {
    std::cerr << "error[" << e.code_name() << "]: " << e.what() << '\n';
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error[internal]: " << e.what() << '\n';
    return 1;
  }
  return 0;
}

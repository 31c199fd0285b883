// `dreamforge model ...`: subcommands that manage model files.
#include "cli/cmd_model.h"

#include <CLI/CLI.hpp>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "core/error.h"
#include "engine/model_config.h"
#include "engine/tiny_model.h"

namespace df::cli {
namespace {

struct CreateTinyOptions {
  std::string dir;
  std::string data_dir;
  std::string name;
  std::string family;
  uint64_t seed = 0;
};

// DIR when given, else <data dir>/models/checkpoints/<name>, where the service finds installed models.
std::string tiny_model_target(const CreateTinyOptions& options) {
  if (!options.dir.empty()) {
    if (!options.name.empty()) {
      throw Error(ErrorCode::kInvalidArgument, "give either DIR or --data-dir with --name, not both");
    }
    return options.dir;
  }
  if (options.data_dir.empty() || options.name.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "give DIR, or --data-dir and --name");
  }
  if (options.name.find('/') != std::string::npos || options.name == "." || options.name == "..") {
    throw Error(ErrorCode::kInvalidArgument, "--name must be a plain folder name");
  }
  return (std::filesystem::path(options.data_dir) / "models" / "checkpoints" / options.name).string();
}

void add_create_tiny_command(CLI::App& model) {
  auto options = std::make_shared<CreateTinyOptions>();
  CLI::App* command = model.add_subcommand(
      "create-tiny", "Write a tiny random-weight test model in diffusers layout (no download)");
  command->add_option("DIR", options->dir, "Directory to write (new, empty or an earlier test model)");
  command->add_option("--data-dir", options->data_dir, "Install into this service data directory")
      ->envname("DREAMFORGE_DATA_DIR");
  command->add_option("--name", options->name, "Model id when installing into --data-dir");
  command->add_option("--family", options->family, "Model family")
      ->required()
      ->check(CLI::IsMember({"sd1", "sd2", "sdxl"}));
  command->add_option("--seed", options->seed, "Seed of the random weights")->capture_default_str();
  command->callback([options] {
    const std::string target = tiny_model_target(*options);
    engine::write_tiny_model(target, engine::family_from_name(options->family), options->seed);
    std::cout << std::filesystem::absolute(target).lexically_normal().string() << "\n";
  });
}

}  // namespace

void register_model_commands(CLI::App& app) {
  CLI::App* model = app.add_subcommand("model", "Manage model files");
  model->require_subcommand(1);
  add_create_tiny_command(*model);
}

}  // namespace df::cli

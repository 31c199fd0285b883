// `dreamforge model ...`: subcommands that manage model files.
#include "cli/cmd_model.h"

#include <CLI/CLI.hpp>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "engine/model_config.h"
#include "engine/tiny_model.h"

namespace df::cli {
namespace {

struct CreateTinyOptions {
  std::string dir;
  std::string family;
  uint64_t seed = 0;
};

void add_create_tiny_command(CLI::App& model) {
  auto options = std::make_shared<CreateTinyOptions>();
  CLI::App* command = model.add_subcommand(
      "create-tiny", "Write a tiny random-weight test model in diffusers layout (no download)");
  command
      ->add_option("DIR", options->dir, "Directory to write (new, empty or an earlier test model)")
      ->required();
  command->add_option("--family", options->family, "Model family")
      ->required()
      ->check(CLI::IsMember({"sd1", "sd2", "sdxl"}));
  command->add_option("--seed", options->seed, "Seed of the random weights")->capture_default_str();
  command->callback([options] {
    engine::write_tiny_model(options->dir, engine::family_from_name(options->family),
                             options->seed);
    std::cout << std::filesystem::absolute(options->dir).lexically_normal().string() << "\n";
  });
}

}  // namespace

void register_model_commands(CLI::App& app) {
  CLI::App* model = app.add_subcommand("model", "Manage model files");
  model->require_subcommand(1);
  add_create_tiny_command(*model);
}

}  // namespace df::cli

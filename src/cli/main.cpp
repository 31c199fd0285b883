// dreamforge: command-line entry point; dispatches to subcommands.
#include <iostream>

#include <CLI/CLI.hpp>

#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"Dream Forge: self-hosted image generation"};
  app.require_subcommand(1);
  CLI11_PARSE(app, argc, argv);
  return 0;
}

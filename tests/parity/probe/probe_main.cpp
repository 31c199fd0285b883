// Entry point of dreamforge-probe: dispatches to a registered command, reads and writes tensors.
#include <iostream>

#include <CLI/CLI.hpp>

#include "core/error.h"
#include "engine/safetensors.h"
#include "probe.h"

namespace df::probe {
std::map<std::string, Command>& registry() {
  static std::map<std::string, Command> commands;
  return commands;
}
}  // namespace df::probe

int main(int argc, char** argv) {
  CLI::App app{"dreamforge-probe: run one engine component for parity tests"};
  std::string command, in_path, out_path, args_text = "{}";
  app.add_option("command", command, "registered command")->required();
  app.add_option("--in", in_path, "input tensors (safetensors)");
  app.add_option("--out", out_path, "output tensors (safetensors)");
  app.add_option("--args", args_text, "JSON arguments");
  CLI11_PARSE(app, argc, argv);
  try {
    auto& commands = df::probe::registry();
    auto it = commands.find(command);
    if (it == commands.end()) {
      std::cerr << "unknown probe command '" << command << "'; known:";
      for (const auto& [name, fn] : commands) std::cerr << ' ' << name;
      std::cerr << '\n';
      return 2;
    }
    df::engine::TensorMap inputs;
    if (!in_path.empty()) inputs = df::engine::load_safetensors(in_path);
    auto outputs = it->second(nlohmann::json::parse(args_text), inputs);
    if (!out_path.empty()) df::engine::save_safetensors(out_path, outputs);
    return 0;
  } catch (const df::Error& e) {
    std::cerr << "error[" << e.code_name() << "]: " << e.what() << '\n';
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << '\n';
    return 1;
  }
}

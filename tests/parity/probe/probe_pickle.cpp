// Probe command "read_weights": every tensor of a weights file as the engine reads it (any format).
#include <iostream>

#include "engine/safetensors.h"
#include "engine/tensor_file.h"
#include "probe.h"

namespace {

// args: {"path", "dtype": "stored" | "float32"}; outputs: the file's tensors under their (flattened)
// names, each made contiguous. Prints {"format", "metadata"} as JSON on stdout.
df::engine::TensorMap read_weights(const nlohmann::json& args, const df::engine::TensorMap&) {
  const df::engine::TensorFile file = df::engine::TensorFile::open(args.at("path").get<std::string>());
  std::cout << nlohmann::json{{"format", df::engine::weights_format_name(file.format())},
                              {"metadata", file.metadata()}}
                   .dump()
            << '\n';
  df::engine::TensorMap tensors =
      args.value("dtype", "stored") == "float32"
          ? df::engine::load_tensors_as(file, at::kFloat,
                                        [](const std::string& name) { return std::optional(name); })
          : df::engine::load_tensors(file.path());
  for (auto& [name, tensor] : tensors) tensor = tensor.contiguous().clone();
  return tensors;
}

DF_PROBE_COMMAND("read_weights", read_weights);

}  // namespace

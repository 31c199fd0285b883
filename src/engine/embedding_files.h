// Finds textual-inversion embedding files by the names prompts give them (ComfyUI's rules).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace df::engine {

// Resolves the NAME of a prompt's "embedding:NAME" to a file path; nullopt when there is none.
using EmbeddingFinder = std::function<std::optional<std::string>(const std::string& name)>;

// The file "embedding:NAME" means, searching each of `dirs` and then every folder below it (sorted,
// links followed): NAME itself when it is a file there, else NAME + ".safetensors", ".pt" or ".bin".
// A name that leads out of the folder searched (absolute, "..") is not looked up there. Pickle
// files are found like the others: loading them is refused later with a clear error.
std::optional<std::string> find_embedding_file(const std::vector<std::string>& dirs,
                                               const std::string& name);

}  // namespace df::engine

// Runs one command of a container engine client (docker, podman) to its end, within a time bound.
#pragma once

#include <string>
#include <vector>

namespace df::runner {

struct EngineResult {
  bool finished = false;  // false: it ran past the bound and was killed
  int status = 0;         // the wait status once finished
  std::string out;        // what it wrote on stdout
  std::string err;        // what it wrote on stderr

  bool succeeded() const;
  // "exited with status 1: Error: No such container: x" and the like, for messages.
  std::string describe() const;
};

// Runs `argv` (argv[0] looked up in PATH) with this process's environment less its secrets and
// no stdin; kills it once `timeout_ms` passed. Throws Error(kIo) only when it cannot be started.
EngineResult run_engine_client(const std::vector<std::string>& argv, int timeout_ms);

}  // namespace df::runner

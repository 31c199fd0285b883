// A runner scripted in sh for worker tests: it says hello and answers a run with fixed events.
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runner/protocol.h"

namespace df::test {

// Writes <dir>/runner.sh: a runner that says hello (protocol `protocol`, capabilities of `kind` on
// the CPU), answers a run with `run_events` (one JSON object per line) between run_started and
// run_finished (run id "r"), and answers shutdown with bye. Returns its path.
inline std::string write_scripted_runner(const std::filesystem::path& dir, const std::string& kind,
                                         const std::vector<nlohmann::json>& run_events = {},
                                         int protocol = runner::kProtocolVersion) {
  std::string lines;
  for (const nlohmann::json& event : run_events) lines += "    printf '%s\\n' '" + event.dump() + "'\n";
  const std::filesystem::path script = dir / "runner.sh";
  std::ofstream(script) << "#!/bin/sh\n"
                           "while read -r line; do\n"
                           "  case \"$line\" in\n"
                           "  *'\"type\":\"hello\"'*)\n"
                           "    printf '%s\\n' '{\"type\":\"hello\",\"protocol\":" +
                               std::to_string(protocol) +
                               ",\"runner\":\"scripted-runner\",\"version\":\"0\","
                               "\"capabilities\":{\"kind\":\"" + kind + "\",\"device\":\"cpu\"}}' ;;\n"
                               "  *'\"type\":\"run\"'*)\n"
                               "    printf '%s\\n' '{\"type\":\"run_started\",\"id\":\"r\",\"items\":1}'\n" +
                               lines +
                               "    printf '%s\\n' '{\"type\":\"run_finished\",\"id\":\"r\","
                               "\"status\":\"succeeded\",\"items_completed\":1}' ;;\n"
                               "  *'\"type\":\"shutdown\"'*) printf '%s\\n' '{\"type\":\"bye\"}'; exit 0 ;;\n"
                               "  esac\n"
                               "done\n";
  ::chmod(script.c_str(), 0755);
  return script.string();
}

}  // namespace df::test

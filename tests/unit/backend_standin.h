// A stand-in ComfyUI server for the unit tests of started backends: a python3 script that answers
// GET /object_info (or exits at once, or never listens), started through a BackendSpec's command.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backends/backend_config.h"
#include "loopback_port.h"

namespace df::test {

// A stand-in backend server: "ready" answers GET /object_info, "fail" exits 3 at once, "silent"
// never listens.
inline constexpr const char* kStandinBackendServer = R"(import http.server, sys, time
port, mode = int(sys.argv[1]), sys.argv[2]
print("stand-in backend", mode, "on", port, flush=True)
if mode == "fail":
    print("boom: no models folder", flush=True)
    sys.exit(3)
if mode == "silent":
    time.sleep(600)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"{}" if self.path == "/object_info" else b"no"
        self.send_response(200 if self.path == "/object_info" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
)";

// A backend started by us whose command runs the stand-in in `mode` on a free port; the script is
// written into `dir`.
inline backends::BackendSpec standin_backend(const std::filesystem::path& dir, const std::string& name,
                                             const std::string& mode, int64_t start_timeout_ms = 60000) {
  const std::filesystem::path script = dir / "standin_backend.py";
  std::ofstream(script) << kStandinBackendServer;
  backends::BackendSpec spec;
  spec.name = name;
  spec.port = free_loopback_port();
  spec.command = {"python3", script.string(), "{port}", mode};
  spec.start_timeout_ms = start_timeout_ms;
  return spec;
}

}  // namespace df::test

// A started backend server: its argv and log path, ready once /object_info answers, crash
// detection and restart, staged stop, and the errors of one that exits or stays silent.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "backends/backend_process.h"
#include "http/client.h"
#include "test_support.h"

namespace df::backends {
namespace {

// A stand-in backend server: "ready" answers GET /object_info, "fail" exits 3 at once, "silent"
// never listens.
constexpr const char* kServer = R"(import http.server, sys, time
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

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

class BackendProcessTest : public ::testing::Test {
 protected:
  BackendSpec spec(const std::string& mode, int64_t start_timeout_ms = 60000) {
    std::ofstream(dir.path() / "server.py") << kServer;
    BackendSpec spec;
    spec.name = "standin";
    spec.port = free_port();
    spec.command = {"python3", (dir.path() / "server.py").string(), "{port}", mode};
    spec.start_timeout_ms = start_timeout_ms;
    return spec;
  }
  std::string data_dir() const { return (dir.path() / "data").string(); }

  test::TestDir dir{"df_backend_process_"};
};

TEST(BackendArgv, ReplacesThePortInEveryWord) {
  BackendSpec spec;
  spec.port = 8190;
  spec.command = {"python", "main.py", "--port={port}", "--listen", "{port}{port}"};
  EXPECT_EQ(backend_argv(spec), (std::vector<std::string>{"python", "main.py", "--port=8190",
                                                          "--listen", "81908190"}));
}

TEST(BackendArgv, LogsUnderTheDataFolder) {
  EXPECT_EQ(backend_log_path("/srv/df", "sdxl"), std::filesystem::path("/srv/df/logs/backends/sdxl.log"));
}

TEST(BackendArgv, ABackendWithoutCommandIsNotStartedByUs) {
  BackendSpec spec;
  spec.name = "remote";
  spec.url = "http://10.0.0.2:8188";
  EXPECT_EQ(test::error_code_of([&] { BackendProcess(spec, "/tmp"); }), ErrorCode::kInvalidArgument);
}

TEST_F(BackendProcessTest, StartsUntilObjectInfoAnswersAndStops) {
  BackendProcess backend(spec("ready"), data_dir(), 2000);
  EXPECT_FALSE(backend.running());
  backend.ensure_started();
  EXPECT_TRUE(backend.running());
  EXPECT_GT(backend.pid(), 0);
  EXPECT_EQ(http::Client(backend.spec().base_url()).get("/object_info").status, 200);
  EXPECT_NE(last_lines(backend.log_path(), 5).find("stand-in backend ready"), std::string::npos);
  const pid_t pid = backend.pid();
  backend.ensure_started();  // already running: the same server
  EXPECT_EQ(backend.pid(), pid);

  EXPECT_EQ(backend.stop(), "killed by signal 15 (Terminated)");
  EXPECT_FALSE(backend.running());
  EXPECT_EQ(backend.pid(), 0);
  EXPECT_EQ(backend.stop(), "");
}

TEST_F(BackendProcessTest, NoticesACrashAndStartsAgainWhenAsked) {
  BackendProcess backend(spec("ready"), data_dir(), 2000);
  backend.ensure_started();
  const pid_t first = backend.pid();
  ::kill(first, SIGKILL);
  while (backend.running()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(backend.exit_description(), "killed by signal 9 (Killed)");

  backend.ensure_started();
  EXPECT_TRUE(backend.running());
  EXPECT_NE(backend.pid(), first);
  EXPECT_EQ(backend.exit_description(), "");
}

TEST_F(BackendProcessTest, OneThatExitsBeforeAnsweringIsUnavailableWithItsLog) {
  BackendProcess backend(spec("fail"), data_dir(), 2000);
  const Error error = test::error_of([&] { backend.ensure_started(); });
  EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  EXPECT_NE(std::string(error.what()).find("exited with status 3 before it answered"), std::string::npos)
      << error.what();
  EXPECT_NE(std::string(error.what()).find("boom: no models folder"), std::string::npos) << error.what();
  EXPECT_EQ(error.details()["backend"], "standin");
  EXPECT_FALSE(backend.running());
}

TEST_F(BackendProcessTest, OneThatNeverAnswersIsStoppedAfterItsStartTimeout) {
  BackendProcess backend(spec("silent", 300), data_dir(), 2000);
  const Error error = test::error_of([&] { backend.ensure_started(); });
  EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  EXPECT_NE(std::string(error.what()).find("did not answer within 300 ms and was stopped"), std::string::npos)
      << error.what();
  EXPECT_NE(std::string(error.what()).find(backend.log_path().string()), std::string::npos) << error.what();
  EXPECT_FALSE(backend.running());
  EXPECT_EQ(backend.exit_description(), "killed by signal 15 (Terminated)");
}

}  // namespace
}  // namespace df::backends

// A real Redis server for tests: redis-server on a free loopback port, its files in a temporary
// folder, without persistence; it can be stopped and started again on the same port.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "core/error.h"
#include "queue/redis_connection.h"
#include "loopback_port.h"

namespace df::test {

class RedisServer {
 public:
  // redis-server's path: $DREAMFORGE_REDIS_SERVER, else the first on PATH; "" when there is none.
  static std::string find_binary() {
    if (const char* configured = std::getenv("DREAMFORGE_REDIS_SERVER")) return configured;
    const char* path = std::getenv("PATH");
    std::stringstream folders(path != nullptr ? path : "/usr/bin");
    std::string folder;
    while (std::getline(folders, folder, ':')) {
      const std::filesystem::path candidate = std::filesystem::path(folder) / "redis-server";
      if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
    return "";
  }

  // The server of this test binary, started on first use; throws std::runtime_error when it
  // cannot start.
  static RedisServer& instance() {
    static RedisServer server;
    return server;
  }

  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;
  ~RedisServer() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }

  int port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  queue::RedisEndpoint endpoint() const { return {"127.0.0.1", port_, 0, "", ""}; }

  // Starts the server unless it runs; returns once it answers PING.
  void start() {
    if (pid_ > 0) return;
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("Redis test server: fork failed");
    if (pid_ == 0) exec_server();
    wait_until_ready();
  }

  // Stops the server; its data is gone (no persistence), as after a restart of a cache.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  // Empties every database.
  void flush() { queue::RedisConnection(endpoint()).call({"FLUSHALL"}, "FLUSHALL"); }

 private:
  RedisServer()
      : binary_(find_binary()),
        root_(std::filesystem::temp_directory_path() / ("df_redis_" + std::to_string(::getpid()))),
        port_(free_loopback_port()) {
    if (binary_.empty()) {
      throw std::runtime_error(
          "redis-server is not installed: the Redis queue tests start a real server (install the "
          "Debian package redis-server, run scripts/setup, or set DREAMFORGE_REDIS_SERVER)");
    }
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
    start();
  }

  [[noreturn]] void exec_server() const {
    // The server ends with the test binary, even when that crashes.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    const std::string port = std::to_string(port_);
    const std::string log = (root_ / "server.log").string();
    std::vector<std::string> args = {
        binary_,  "--port", port,           "--bind", "127.0.0.1", "--dir", root_.string(),
        "--save", "",       "--appendonly", "no",     "--logfile", log,     "--daemonize",
        "no"};
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    ::execv(binary_.c_str(), argv.data());
    ::_exit(127);
  }

  void wait_until_ready() {
    // Generous for a loaded machine; the wait ends at the first answer.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < give_up) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("Redis test server exited at start" + server_log());
      }
      try {
        queue::RedisConnection(endpoint()).call({"PING"}, "PING");
        return;
      } catch (const Error&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    stop();
    throw std::runtime_error("Redis test server did not answer within 60 s" + server_log());
  }

  std::string server_log() const {
    std::ifstream file(root_ / "server.log");
    std::ostringstream log;
    if (file) log << "\n--- server.log:\n" << file.rdbuf();
    return log.str();
  }

  std::string binary_;
  std::filesystem::path root_;
  int port_;
  pid_t pid_ = -1;
};

}  // namespace df::test

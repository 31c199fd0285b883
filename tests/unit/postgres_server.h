// A real PostgreSQL server for tests: initdb into a temporary folder, started on a free loopback
// port (its socket in that folder), stopped when the test binary exits; a fresh database per test.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "store/postgres_db.h"
#include "loopback_port.h"

namespace df::test {

class PostgresServer {
 public:
  // The server of this test binary, started on first use. Throws std::runtime_error saying what
  // is missing when PostgreSQL's server programs are not installed or the server cannot start.
  static PostgresServer& instance() {
    static PostgresServer server;
    return server;
  }

  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;
  ~PostgresServer() {
    run(bin("pg_ctl") + " -D " + quoted(data_dir()) + " -m immediate -s stop");
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }

  // The URL of a new, empty database.
  std::string create_database() {
    const std::string name = "test_" + std::to_string(++databases_);
    store::PgConnection admin(url("postgres"));
    admin.exec("CREATE DATABASE " + name);
    return url(name);
  }

  std::string url(const std::string& database) const {
    return "postgres://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database;
  }

  // Stops the server (the data stays) and starts it again on the same port: what clients see of a
  // database restart.
  void stop() { check(bin("pg_ctl") + " -D " + quoted(data_dir()) + " -m fast -w -s stop"); }
  void start() {
    check(bin("pg_ctl") + " -D " + quoted(data_dir()) + " -l " + quoted(root_ / "server.log") +
          " -w -s -o " +
          quoted("-c listen_addresses=127.0.0.1 -p " + std::to_string(port_) +
                 " -c unix_socket_directories=" + root_.string() +
                 " -c fsync=off -c synchronous_commit=off -c full_page_writes=off") +
          " start");
  }

 private:
  PostgresServer()
      : bin_dir_(find_bin_dir()),
        root_(std::filesystem::temp_directory_path() /
              ("df_postgres_" + std::to_string(::getpid()))),
        port_(free_loopback_port()) {
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
    if (::geteuid() == 0) {
      // PostgreSQL refuses to run as root: the server runs as the postgres account instead.
      check("chown postgres " + quoted(root_));
    }
    check(bin("initdb") + " -D " + quoted(data_dir()) +
          " -U postgres -A trust -E UTF8 --locale=C.UTF-8 -N > " + quoted(root_ / "initdb.log") +
          " 2>&1");
    start();
  }

  static std::string find_bin_dir() {
    if (const char* configured = std::getenv("DREAMFORGE_POSTGRES_BIN")) return configured;
    std::vector<std::filesystem::path> found;
    std::error_code ignored;
    for (const auto& version :
         std::filesystem::directory_iterator("/usr/lib/postgresql", ignored)) {
      if (std::filesystem::exists(version.path() / "bin" / "initdb")) {
        found.push_back(version.path() / "bin");
      }
    }
    if (found.empty()) {
      throw std::runtime_error(
          "PostgreSQL's server programs (initdb, pg_ctl) are not installed: the Postgres store "
          "tests start a real server (install the Debian package postgresql, run scripts/setup, "
          "or set DREAMFORGE_POSTGRES_BIN to the folder holding initdb)");
    }
    std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
      return std::stoi(a.parent_path().filename().string()) <
             std::stoi(b.parent_path().filename().string());
    });
    return found.back().string();
  }

  static std::string quoted(const std::filesystem::path& value) {
    return "'" + value.string() + "'";
  }

  std::filesystem::path data_dir() const { return root_ / "data"; }
  // The command line of a server program, run as the postgres account when this is root.
  std::string bin(const std::string& program) const {
    const std::string path = quoted(std::filesystem::path(bin_dir_) / program);
    return ::geteuid() == 0 ? "runuser -u postgres -- " + path : path;
  }
  static int run(const std::string& command) { return std::system(command.c_str()); }
  void check(const std::string& command) const {
    if (run(command) == 0) return;
    std::ostringstream logs;
    for (const char* log : {"initdb.log", "server.log"}) {
      std::ifstream file(root_ / log);
      if (file) logs << "\n--- " << log << ":\n" << file.rdbuf();
    }
    throw std::runtime_error("PostgreSQL test server: '" + command + "' failed" + logs.str());
  }

  std::string bin_dir_;
  std::filesystem::path root_;
  int port_;
  int databases_ = 0;
};

}  // namespace df::test

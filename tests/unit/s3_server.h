// A real S3 server (MinIO, installed by scripts/install_s3_server) for the storage tests: started
// on a free loopback port with a fresh data directory and its own credentials, stopped on
// destruction.
#pragma once

#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "blob/s3_client.h"
#include "blob/s3_settings.h"
#include "loopback_port.h"

extern char** environ;

namespace df::test {

// The MinIO binary: $DREAMFORGE_MINIO, else <repo>/.tools/bin/minio.
inline std::filesystem::path minio_binary() {
  if (const char* configured = std::getenv("DREAMFORGE_MINIO"); configured && *configured) {
    return configured;
  }
  return std::filesystem::path(DF_TEST_DATA_DIR) / ".." / ".." / ".." / ".tools" / "bin" / "minio";
}

class S3Server {
 public:
  static constexpr const char* kAccessKey = "dreamforge-test";
  static constexpr const char* kSecretKey = "dreamforge-test-secret";

  // Starts the server; a test that runs without MinIO installed fails here with what to do.
  explicit S3Server(std::filesystem::path data_dir)
      : data_dir_(std::move(data_dir)), port_(free_loopback_port()) {
    start();
  }
  ~S3Server() { stop(); }
  S3Server(const S3Server&) = delete;
  S3Server& operator=(const S3Server&) = delete;

  bool running() const { return pid_ > 0; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Settings for `bucket` on this server, with its credentials.
  blob::S3Settings settings(const std::string& bucket) const {
    blob::S3Settings settings;
    settings.bucket = bucket;
    settings.endpoint = endpoint();
    settings.credentials = {kAccessKey, kSecretKey};
    return settings;
  }

  void create_bucket(const std::string& bucket) const {
    const blob::S3Response response =
        blob::S3Client(settings(bucket)).send({"PUT", "", {}, {}, ""});
    ASSERT_EQ(response.status, 200) << response.body;
  }

  // Starts the server again on the same port and data (after stop()).
  void start() {
    const std::filesystem::path binary = minio_binary();
    if (!std::filesystem::is_regular_file(binary)) {
      ADD_FAILURE() << "no S3 server for the storage tests: " << binary
                    << " is missing; run scripts/install_s3_server (or set DREAMFORGE_MINIO)";
      return;
    }
    std::filesystem::create_directories(data_dir_ / "data");
    const std::string log = (data_dir_ / "minio.log").string();
    std::vector<std::string> args = {binary.string(),
                                     "server",
                                     "--quiet",
                                     "--address",
                                     "127.0.0.1:" + std::to_string(port_),
                                     "--console-address",
                                     "127.0.0.1:" + std::to_string(free_loopback_port()),
                                     (data_dir_ / "data").string()};
    std::vector<std::string> env = {std::string("MINIO_ROOT_USER=") + kAccessKey,
                                    std::string("MINIO_ROOT_PASSWORD=") + kSecretKey,
                                    "MINIO_BROWSER=off", "MINIO_UPDATE=off",
                                    "HOME=" + data_dir_.string()};
    std::vector<char*> argv, envp;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    for (auto& entry : env) envp.push_back(entry.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    const int spawned =
        posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) {
      pid_ = 0;
      ADD_FAILURE() << "could not start " << binary;
      return;
    }
    wait_until_ready(log);
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = 0;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }

 private:
  void wait_until_ready(const std::string& log) {
    const std::string url = endpoint() + "/minio/health/ready";
    for (int i = 0; i < 300; ++i) {
      CURL* curl = curl_easy_init();
      curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
      curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
      curl_easy_setopt(curl, CURLOPT_TIMEOUT, 1L);
      long status = 0;
      if (curl_easy_perform(curl) == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
      curl_easy_cleanup(curl);
      if (status == 200) return;
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = 0;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::ostringstream output;
    output << std::ifstream(log).rdbuf();
    stop();
    ADD_FAILURE() << "the S3 server did not come up on " << endpoint() << ":\n" << output.str();
  }

  std::filesystem::path data_dir_;
  int port_;
  pid_t pid_ = 0;
};

}  // namespace df::test

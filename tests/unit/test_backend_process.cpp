// A started backend server: its argv and log path, ready once /object_info answers, crash
// detection and restart, staged stop, and the errors of one that exits or stays silent.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "backends/backend_process.h"
#include "http/client.h"
#include "backend_standin.h"
#include "test_support.h"

namespace df::backends {
namespace {

class BackendProcessTest : public ::testing::Test {
 protected:
  BackendSpec spec(const std::string& mode, int64_t start_timeout_ms = 60000) {
    return test::standin_backend(dir.path(), "standin", mode, start_timeout_ms);
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

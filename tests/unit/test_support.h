// Helpers shared by the unit tests: a fresh temporary directory for the running test, a file's
// text, and the df::Error an action throws.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <unistd.h>

#include "core/error.h"

namespace df::test {

// <temp>/<prefix><pid>_<suite>_<test name>, empty from construction until destruction, which
// removes it (unique per process, since ctest runs tests as parallel processes). Construct it
// while a test runs (as a fixture member or in SetUp).
class TestDir {
 public:
  explicit TestDir(const std::string& prefix)
      : path_(std::filesystem::temp_directory_path() /
              (prefix + std::to_string(::getpid()) + "_" +
               ::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name() + "_" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TestDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TestDir(const TestDir&) = delete;
  TestDir& operator=(const TestDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The whole text of a file ("" when it cannot be read).
inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The df::Error `action` throws (a test failure, and an internal error, when it throws none).
template <class Action>
Error error_of(Action&& action) {
  try {
    action();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "expected a df::Error";
  return Error(ErrorCode::kInternal, "no error thrown");
}

// The code of the df::Error `action` throws.
template <class Action>
ErrorCode error_code_of(Action&& action) {
  return error_of(std::forward<Action>(action)).code();
}

}  // namespace df::test

// Unit tests for the filesystem helpers: atomic writes, whole-file reads and confined path joins.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "test_graph_support.h"

namespace df {
namespace {

namespace fs = std::filesystem;

using graph_test::expect_error;

std::vector<uint8_t> bytes_of(const std::string& text) { return {text.begin(), text.end()}; }

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

class Files : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "df-files-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = fs::canonical(pattern);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

TEST_F(Files, AtomicWriteCreatesTheFile) {
  write_file_atomically(path("out.bin"), {0, 1, 2, 255});
  EXPECT_EQ(read_file_bytes(path("out.bin")), (std::vector<uint8_t>{0, 1, 2, 255}));
  EXPECT_EQ(names_in(dir_), std::vector<std::string>{"out.bin"});
}

TEST_F(Files, AtomicWriteReplacesTheContentAndLeavesNoTemporaryFile) {
  write_file_atomically(path("state.json"), bytes_of("a much longer first version"));
  write_file_atomically(path("state.json"), bytes_of("short"));
  EXPECT_EQ(read_file_bytes(path("state.json")), bytes_of("short"));
  write_file_atomically(path("state.json"), {});
  EXPECT_EQ(fs::file_size(path("state.json")), 0u);
  EXPECT_EQ(names_in(dir_), std::vector<std::string>{"state.json"});
}

TEST_F(Files, AtomicWriteIntoAMissingDirectoryFailsWithIo) {
  const Error e = expect_error(
      [&] { write_file_atomically(path("no/such/dir/out.bin"), bytes_of("x")); }, ErrorCode::kIo);
  EXPECT_NE(std::string(e.what()).find("no/such/dir"), std::string::npos) << e.what();
  EXPECT_TRUE(names_in(dir_).empty());
}

TEST_F(Files, AtomicWriteOverADirectoryFailsWithIoAndCleansUp) {
  fs::create_directory(path("taken"));
  fs::create_directory(path("taken/child"));
  expect_error([&] { write_file_atomically(path("taken"), bytes_of("x")); }, ErrorCode::kIo);
  EXPECT_EQ(names_in(dir_), std::vector<std::string>{"taken"});
}

TEST_F(Files, ReadMissingFileFailsWithIo) {
  const Error e = expect_error([&] { read_file_bytes(path("absent.png")); }, ErrorCode::kIo);
  EXPECT_NE(std::string(e.what()).find("absent.png"), std::string::npos) << e.what();
}

TEST_F(Files, ReadDirectoryFailsWithIo) {
  expect_error([&] { read_file_bytes(dir_.string()); }, ErrorCode::kIo);
}

TEST_F(Files, JoinInsideAcceptsNestedRelativePaths) {
  EXPECT_EQ(join_inside(dir_.string(), "cat.png", "image"), (dir_ / "cat.png").string());
  EXPECT_EQ(join_inside(dir_.string(), "sd15/models/v1.safetensors", "checkpoint"),
            (dir_ / "sd15/models/v1.safetensors").string());
  fs::create_directories(path("sub/deeper"));
  EXPECT_EQ(join_inside(dir_.string(), "sub/deeper/x.png", "image"),
            (dir_ / "sub/deeper/x.png").string());
  EXPECT_EQ(join_inside(dir_.string(), "sub/../other.png", "image"),
            (dir_ / "other.png").string());
  EXPECT_EQ(join_inside(dir_.string() + "/", "cat.png", "image"), (dir_ / "cat.png").string());
}

TEST_F(Files, JoinInsideAcceptsARootThatDoesNotExistYet) {
  EXPECT_EQ(join_inside(path("later"), "a/b.png", "image"), path("later/a/b.png"));
  EXPECT_EQ(join_inside(path("later") + "/", "b.png", "image"), path("later/b.png"));
  expect_error([&] { join_inside(path("later") + "/", "../b.png", "image"); },
               ErrorCode::kInvalidArgument);
}

TEST_F(Files, JoinInsideRefusesAbsolutePaths) {
  const Error e = expect_error([&] { join_inside(dir_.string(), "/etc/passwd", "image"); },
                               ErrorCode::kInvalidArgument);
  EXPECT_NE(std::string(e.what()).find("image '/etc/passwd'"), std::string::npos) << e.what();
}

TEST_F(Files, JoinInsideRefusesDotDotEscapes) {
  fs::create_directory(path("root"));
  fs::create_directory(path("root2"));
  const std::string root = path("root");
  for (const char* escape :
       {"..", "../x.png", "a/../../x.png", "../root2/x.png", "./../root/../.."}) {
    const Error e = expect_error([&] { join_inside(root, escape, "checkpoint"); },
                                 ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("checkpoint '"), std::string::npos) << e.what();
  }
}

TEST_F(Files, JoinInsideRefusesSymlinksLeavingTheRoot) {
  fs::create_directory(path("root"));
  fs::create_directory(path("outside"));
  std::ofstream(path("outside/secret.txt")) << "secret";
  fs::create_directory_symlink(path("outside"), path("root/link"));
  fs::create_symlink(path("outside/secret.txt"), path("root/secret.txt"));
  const std::string root = path("root");
  expect_error([&] { join_inside(root, "link/secret.txt", "image"); },
               ErrorCode::kInvalidArgument);
  expect_error([&] { join_inside(root, "secret.txt", "image"); }, ErrorCode::kInvalidArgument);
  expect_error([&] { join_inside(root, "link/not-there-yet.png", "image"); },
               ErrorCode::kInvalidArgument);
}

TEST_F(Files, JoinInsideFollowsSymlinksThatStayInside) {
  fs::create_directories(path("root/real"));
  fs::create_directory_symlink(path("root/real"), path("root/alias"));
  EXPECT_EQ(join_inside(path("root"), "alias/x.png", "image"), path("root/real/x.png"));
}

}  // namespace
}  // namespace df

// Tests for the files a fresh ComfyUI user folder gets.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "api/comfy_user_defaults.h"
#include "test_support.h"

namespace df::api {
namespace {

namespace fs = std::filesystem;
using test::read_text;

TEST(ComfyUserDefaults, AFreshFolderGetsWhatTheFrontendReadsAtBoot) {
  const test::TestDir dir("user_defaults");
  const auto created = install_user_defaults(dir.path());
  EXPECT_EQ(created.size(), 6u);
  EXPECT_TRUE(fs::is_directory(dir.path() / "subgraphs"));
  EXPECT_EQ(read_text(dir.path() / "user.css"), "");
  EXPECT_EQ(read_text(dir.path() / "comfy.templates.json"), "[]");
  EXPECT_EQ(read_text(dir.path() / "workflows" / ".index.json"), "{\"favorites\": []}");
}

TEST(ComfyUserDefaults, TheUsersOwnFilesAreKept) {
  const test::TestDir dir("user_defaults");
  { std::ofstream(dir.path() / "user.css") << "body { color: red; }"; }
  const auto created = install_user_defaults(dir.path());
  EXPECT_EQ(std::count(created.begin(), created.end(), "user.css"), 0);
  EXPECT_EQ(read_text(dir.path() / "user.css"), "body { color: red; }");
  EXPECT_TRUE(install_user_defaults(dir.path()).empty());
}

}  // namespace
}  // namespace df::api

// Tests of the user-data path rules: names from raw targets, percent-decoding, no way out.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "api/comfy_userdata_paths.h"
#include "core/error.h"
#include "test_support.h"

namespace df::api {
namespace {

namespace fs = std::filesystem;

TEST(ComfyUserDataPaths, NamesFromRawTargets) {
  UserDataTarget plain = parse_userdata_target(
      "/api/userdata/workflows%2FUnsaved%20Workflow.json?overwrite=false", false);
  EXPECT_EQ(plain.file, "workflows/Unsaved Workflow.json");
  EXPECT_FALSE(plain.move_to);
  EXPECT_EQ(parse_userdata_target("/userdata/a/b.json", false).file, "a/b.json");
  EXPECT_EQ(parse_userdata_target("/userdata/100%25.json", false).file, "100%.json");
}

TEST(ComfyUserDataPaths, MoveSplitsAtTheLiteralSeparatorOnly) {
  UserDataTarget move = parse_userdata_target(
      "/api/userdata/workflows%2Fmove%2Fa.json/move/workflows%2Fb.json?x=1", true);
  EXPECT_EQ(move.file, "workflows/move/a.json");
  ASSERT_TRUE(move.move_to);
  EXPECT_EQ(*move.move_to, "workflows/b.json");
  EXPECT_EQ(parse_userdata_target("/userdata/a/move/b", false).file, "a/move/b");
  EXPECT_FALSE(parse_userdata_target("/userdata/a%2Fmove%2Fb", true).move_to);
}

TEST(ComfyUserDataPaths, OtherTargetsAreRefused) {
  EXPECT_THROW(parse_userdata_target("/v1/userdata/x", false), Error);
  EXPECT_THROW(parse_userdata_target("/userdata", false), Error);
}

TEST(ComfyUserDataPaths, PercentDecodeKeepsInvalidEscapes) {
  EXPECT_EQ(percent_decode("a%2Fb%2fc"), "a/b/c");
  EXPECT_EQ(percent_decode("50%"), "50%");
  EXPECT_EQ(percent_decode("%zz%4"), "%zz%4");
  EXPECT_EQ(percent_decode("%00"), std::string(1, '\0'));
  EXPECT_EQ(percent_decode("%C3%A9"), "\xC3\xA9");
}

TEST(ComfyUserDataPaths, PathsStayInsideTheRoot) {
  test::TestDir dir("df_comfy_paths_");
  const fs::path root = dir.path() / "user";
  fs::create_directories(root / "workflows");
  const fs::path canonical_root = fs::canonical(root);
  EXPECT_EQ(user_path_inside(root, "workflows/a.json"), canonical_root / "workflows" / "a.json");
  EXPECT_EQ(user_path_inside(root, "new/dir/b.json"), canonical_root / "new" / "dir" / "b.json");
  EXPECT_EQ(user_path_inside(root, "workflows/../c.json"), canonical_root / "c.json");
  EXPECT_EQ(user_path_inside(root, ""), canonical_root);
  EXPECT_EQ(user_path_inside(root, "."), canonical_root);
  EXPECT_FALSE(user_path_inside(root, ".."));
  EXPECT_FALSE(user_path_inside(root, "../user2/x.json"));
  EXPECT_FALSE(user_path_inside(root, "workflows/../../x"));
  EXPECT_FALSE(user_path_inside(root, "/etc/passwd"));
  EXPECT_FALSE(user_path_inside(root, std::string("a\0b", 3)));
  fs::create_directory_symlink(dir.path(), root / "out");
  EXPECT_FALSE(user_path_inside(root, "out/secret"));
}

TEST(ComfyUserDataPaths, RelativePathsUseForwardSlashes) {
  test::TestDir dir("df_comfy_paths_");
  const fs::path root = dir.path();
  EXPECT_EQ(user_relative_path(root, fs::canonical(root) / "workflows" / "a.json"),
            "workflows/a.json");
}

}  // namespace
}  // namespace df::api

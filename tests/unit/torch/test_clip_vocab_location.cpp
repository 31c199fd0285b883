// Tests of where the runner finds the CLIP vocabulary installed beside the executables.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "engine/clip_vocab_location.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

class InstallTree : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::temp_directory_path() / (std::string("df_clip_vocab_") + info->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "bin");
    fs::create_directories(vocab_dir());
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path vocab_dir() const { return root_ / "share" / "dreamforge" / "clip"; }
  std::string executable() const { return (root_ / "bin" / "dreamforge-runner").string(); }
  void write(const std::string& name) const { std::ofstream(vocab_dir() / name) << "{}"; }

  fs::path root_;
};

TEST_F(InstallTree, FindsTheVocabularyInShareBesideBin) {
  write("vocab.json");
  write("merges.txt");
  EXPECT_EQ(clip_vocab_dir_beside(executable()), vocab_dir().lexically_normal().string());
}

TEST_F(InstallTree, AnIncompleteVocabularyIsNotUsed) {
  write("vocab.json");
  EXPECT_EQ(clip_vocab_dir_beside(executable()), "");
}

TEST_F(InstallTree, NoVocabularyGivesAnEmptyPath) {
  EXPECT_EQ(clip_vocab_dir_beside(executable()), "");
}

}  // namespace
}  // namespace df::engine

// Tests of weight loading: safetensors and libtorch tensors, single-file keys, model loading.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/error.h"
#include "engine/safetensors.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            (std::string("df_checkpoint_") + info->test_suite_name() + "_" + info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(SafetensorsTorch, SaveLoadRoundTripsEveryDtype) {
  TempDir dir;
  TensorMap tensors = {
      {"f32", at::randn({3, 4})},
      {"f16", at::randn({2, 5}).to(at::kHalf)},
      {"bf16", at::randn({7}).to(at::kBFloat16)},
      {"f64", at::randn({2}, at::kDouble)},
      {"i64", at::arange(6, at::kLong).reshape({2, 3})},
      {"i32", at::arange(3, at::kInt)},
      {"i16", at::arange(3, at::kShort)},
      {"i8", at::arange(3, at::kChar)},
      {"u8", at::arange(3, at::kByte)},
      {"bool", at::tensor({1, 0, 1}).to(at::kBool)},
      {"scalar", at::scalar_tensor(2.5)},
      {"empty", at::zeros({0, 3})},
      {"strided", at::randn({4, 6}).t()},
  };
  save_safetensors(dir.file("t.safetensors"), tensors, {{"k", "v"}});
  const TensorMap loaded = load_safetensors(dir.file("t.safetensors"));
  ASSERT_EQ(loaded.size(), tensors.size());
  for (const auto& [name, tensor] : tensors) {
    const at::Tensor& got = loaded.at(name);
    EXPECT_EQ(got.scalar_type(), tensor.scalar_type()) << name;
    EXPECT_EQ(got.sizes(), tensor.sizes()) << name;
    EXPECT_TRUE(at::equal(got, tensor)) << name;
  }
  EXPECT_EQ(SafetensorsFile::open(dir.file("t.safetensors")).metadata().at("k"), "v");
}

TEST(SafetensorsTorch, LoadAsConvertsFloatsAndRenames) {
  TempDir dir;
  const at::Tensor half = at::randn({4, 4}).to(at::kHalf);
  const at::Tensor single = at::randn({3});
  save_safetensors(dir.file("m.safetensors"),
                   {{"keep.half", half}, {"keep.single", single},
                    {"keep.ids", at::arange(3, at::kLong)}, {"drop.me", at::ones({2})}});
  const SafetensorsFile file = SafetensorsFile::open(dir.file("m.safetensors"));
  auto strip_keep = [](const std::string& name) -> std::optional<std::string> {
    if (name.rfind("keep.", 0) != 0) return std::nullopt;
    return name.substr(5);
  };
  const TensorMap loaded = load_safetensors_as(file, at::kFloat, strip_keep);
  ASSERT_EQ(loaded.size(), 3u);
  EXPECT_EQ(loaded.at("half").scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(loaded.at("half"), half.to(at::kFloat)));
  EXPECT_TRUE(at::equal(loaded.at("single"), single));
  EXPECT_EQ(loaded.at("ids").scalar_type(), at::kLong);
  // The copy owns its memory: it stays valid and unshared after the file is gone.
  EXPECT_NE(loaded.at("single").data_ptr(), file.data(*file.find("keep.single")));
}

TEST(SafetensorsTorch, LoadAsRejectsTwoTensorsWithOneName) {
  TempDir dir;
  save_safetensors(dir.file("m.safetensors"), {{"a", at::ones({1})}, {"b", at::ones({1})}});
  const SafetensorsFile file = SafetensorsFile::open(dir.file("m.safetensors"));
  try {
    load_safetensors_as(file, at::kFloat, [](const std::string&) { return std::string("same"); });
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruptFile);
  }
}

}  // namespace
}  // namespace df::engine

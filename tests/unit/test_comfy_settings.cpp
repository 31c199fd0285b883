// Tests of ComfyUI's settings store: merging, single values, persistence, a damaged file kept aside.
#include <gtest/gtest.h>

#include <fstream>

#include "api/comfy_settings.h"
#include "core/error.h"
#include "test_support.h"

namespace df::api {
namespace {

TEST(ComfySettings, MergesSetsAndPersists) {
  test::TestDir dir("df_comfy_settings_");
  {
    ComfySettings settings(dir.path() / "user");
    EXPECT_EQ(settings.all(), nlohmann::json::object());
    settings.merge({{"a", 1}, {"b", "x"}});
    settings.set("b", {{"nested", true}});
    settings.merge({{"c", nullptr}});
    EXPECT_EQ(settings.value("b"), (nlohmann::json{{"nested", true}}));
    EXPECT_EQ(settings.value("missing"), nullptr);
    EXPECT_THROW(settings.merge(nlohmann::json::array({1})), Error);
  }
  ComfySettings reopened(dir.path() / "user");
  EXPECT_EQ(reopened.all(), (nlohmann::json{{"a", 1}, {"b", {{"nested", true}}}, {"c", nullptr}}));
}

TEST(ComfySettings, ADamagedFileReadsAsNoSettingsAndIsKeptBesideTheNextOne) {
  test::TestDir dir("df_comfy_settings_");
  const auto file = dir.path() / "comfy.settings.json";
  for (const std::string damaged : {"{\"a\": 1,", "[1, 2]", "true", ""}) {
    std::ofstream(file) << damaged;
    ComfySettings settings(dir.path());
    EXPECT_EQ(settings.all(), nlohmann::json::object()) << damaged;  // as ComfyUI reads it
    settings.set("b", 2);
    EXPECT_EQ(settings.all(), nlohmann::json({{"b", 2}}));
    std::ifstream kept(dir.path() / "comfy.settings.json.invalid");
    EXPECT_EQ(std::string(std::istreambuf_iterator<char>(kept), {}), damaged);
  }
}

}  // namespace
}  // namespace df::api

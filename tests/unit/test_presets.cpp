// Tests of presets: resolving per device class, validation, unknown names, job defaults.
#include <gtest/gtest.h>

#include "core/error.h"
#include "registry/presets.h"
#include "test_support.h"

namespace df::registry {
namespace {

using nlohmann::json;

PresetDefinition sd15_definition() {
  PresetDefinition definition;
  definition.values = {512, 512, 25, "dpmpp_2m", "karras", 7.0, 4096};
  PresetOverrides cpu;
  cpu.steps = 20;
  cpu.memory_mb = 6144;
  definition.by_device[DeviceClass::kCpu] = cpu;
  return definition;
}

PresetCatalog catalog() {
  PresetCatalog presets;
  presets.add("sd15-standard", sd15_definition());
  presets.add("sdxl-fast", {{1024, 1024, 20, "euler", "normal", 6.0, 9216}, {}});
  return presets;
}

TEST(Presets, ADeviceClassGetsItsOverridesAndTheOthersTheValues) {
  const PresetCatalog presets = catalog();
  const Preset cpu = presets.preset_for("sd15-standard", DeviceClass::kCpu);
  EXPECT_EQ(cpu.steps, 20);
  EXPECT_EQ(cpu.memory_mb, 6144);
  EXPECT_EQ(cpu.width, 512);
  EXPECT_EQ(cpu.sampler, "dpmpp_2m");
  const Preset gpu = presets.preset_for("sd15-standard", DeviceClass::kGpu8gb);
  EXPECT_EQ(gpu, sd15_definition().values);
}

TEST(Presets, AnUnknownNameIsRejectedNamingItAndListingTheKnownOnes) {
  const Error error =
      test::error_of([] { catalog().preset_for("sdxl-turbo", DeviceClass::kGpu24gb); });
  EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
  const std::string message = error.what();
  EXPECT_NE(message.find("'sdxl-turbo'"), std::string::npos) << message;
  EXPECT_NE(message.find("sd15-standard, sdxl-fast"), std::string::npos) << message;
  EXPECT_EQ(error.details()["field"], "preset");
  EXPECT_EQ(error.details()["known"], json({"sd15-standard", "sdxl-fast"}));
}

TEST(Presets, NamesAreLowercaseWordsWithDashes) {
  EXPECT_TRUE(is_valid_preset_name("sdxl-fast"));
  EXPECT_TRUE(is_valid_preset_name("sd1.5_high"));
  EXPECT_FALSE(is_valid_preset_name(""));
  EXPECT_FALSE(is_valid_preset_name("-fast"));
  EXPECT_FALSE(is_valid_preset_name("SDXL"));
  EXPECT_FALSE(is_valid_preset_name("a b"));
  EXPECT_FALSE(is_valid_preset_name(std::string(65, 'a')));
  PresetCatalog presets;
  EXPECT_EQ(test::error_code_of([&] { presets.add("Bad Name", sd15_definition()); }),
            ErrorCode::kInvalidArgument);
  EXPECT_TRUE(presets.names().empty());
}

TEST(Presets, ValuesOutOfRangeAreRejectedNamingTheField) {
  auto field_of = [](Preset preset) {
    return test::error_of([&] { validate_preset(preset); }).details().value("field", "");
  };
  const Preset good = sd15_definition().values;
  EXPECT_NO_THROW(validate_preset(good));
  Preset bad = good;
  bad.width = 500;
  EXPECT_EQ(field_of(bad), "width");
  bad = good;
  bad.height = 4096;
  EXPECT_EQ(field_of(bad), "height");
  bad = good;
  bad.steps = 0;
  EXPECT_EQ(field_of(bad), "steps");
  bad = good;
  bad.sampler = "no_such_sampler";
  EXPECT_EQ(field_of(bad), "sampler");
  bad = good;
  bad.scheduler = "linear";
  EXPECT_EQ(field_of(bad), "scheduler");
  bad = good;
  bad.cfg = 31;
  EXPECT_EQ(field_of(bad), "cfg");
  bad = good;
  bad.memory_mb = 0;
  EXPECT_EQ(field_of(bad), "memory_mb");
}

TEST(Presets, AnOverrideThatBreaksAValueIsRejected) {
  PresetDefinition definition = sd15_definition();
  PresetOverrides overrides;
  overrides.steps = 500;
  definition.by_device[DeviceClass::kGpu8gb] = overrides;
  PresetCatalog presets;
  EXPECT_EQ(test::error_code_of([&] { presets.add("broken", definition); }),
            ErrorCode::kInvalidArgument);
  EXPECT_FALSE(presets.contains("broken"));
}

TEST(Presets, APresetFillsOnlyTheParametersTheJobLeavesOut) {
  const Preset preset = catalog().preset_for("sdxl-fast", DeviceClass::kGpu24gb);
  const json params = apply_preset(preset, {{"prompt", "a fox"}, {"preset", "sdxl-fast"},
                                            {"steps", 8}, {"sampler", "lcm"}});
  EXPECT_EQ(params, json({{"prompt", "a fox"},
                          {"steps", 8},
                          {"sampler", "lcm"},
                          {"width", 1024},
                          {"height", 1024},
                          {"guidance", 6.0},
                          {"scheduler", "normal"}}));
}

TEST(Presets, JsonFormListsEveryValue) {
  EXPECT_EQ(preset_to_json(sd15_definition().values),
            json({{"width", 512}, {"height", 512}, {"steps", 25}, {"sampler", "dpmpp_2m"},
                  {"scheduler", "karras"}, {"cfg", 7.0}, {"memory_mb", 4096}}));
}

}  // namespace
}  // namespace df::registry

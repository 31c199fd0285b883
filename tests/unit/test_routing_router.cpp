// Tests of the model router: tier selection, the fallback chain and its plain-language reasons,
// family candidates, and the error when nothing can run.
#include <gtest/gtest.h>

#include "core/error.h"
#include "registry/model_router.h"
#include "test_support.h"

namespace df::registry {
namespace {

using nlohmann::json;

Model model(const std::string& id, const std::string& family, const std::string& name = "") {
  Model m;
  m.id = id;
  m.name = name.empty() ? id : name;
  m.family = family;
  return m;
}

const DeviceProfile kGpu8gb{DeviceClass::kGpu8gb, 8192};
const DeviceProfile kGpu24gb{DeviceClass::kGpu24gb, 24576};

// The built-in table without its FLUX.1 candidates: the SD fallback chains these tests exercise.
RoutingTable sd_routing_table() {
  RoutingTable table = default_routing_table();
  for (auto& [function, by_quality] : table.routes) {
    for (auto& [quality, chain] : by_quality) {
      std::erase_if(chain, [](const RouteCandidate& c) { return c.family.rfind("flux", 0) == 0; });
    }
  }
  return table;
}

// The SD table with create_image.standard replaced by an explicit-id chain.
RoutingTable table_with_ids() {
  RoutingTable table = sd_routing_table();
  table.routes["create_image"]["standard"] = {{"juggernaut@9", "", "sdxl-high"},
                                             {"dreamshaper@8", "", "sd15-standard"}};
  return table;
}

TEST(RoutingRouter, EachTierGetsItsFirstChoiceWhenEverythingIsThere) {
  const std::vector<Model> models = {model("sd15", "sd1", "SD 1.5"),
                                     model("sdxl-base", "sdxl", "SDXL Base")};
  const auto low = route_request(sd_routing_table(), "create_image", "low", models, kGpu24gb);
  EXPECT_EQ(low.model.id, "sd15");
  EXPECT_EQ(low.preset_name, "sd15-fast");
  EXPECT_EQ(low.preset, default_routing_table().presets.preset_for("sd15-fast",
                                                                    DeviceClass::kGpu24gb));
  EXPECT_FALSE(low.fell_back());
  EXPECT_EQ(low.message, "Using SD 1.5 with the sd15-fast preset.");
  const auto standard =
      route_request(sd_routing_table(), "transform_image", "standard", models, kGpu24gb);
  EXPECT_EQ(standard.model.id, "sd15");
  EXPECT_EQ(standard.preset_name, "sd15-standard");
  const auto high =
      route_request(sd_routing_table(), "create_image", "high", models, kGpu24gb);
  EXPECT_EQ(high.model.id, "sdxl-base");
  EXPECT_EQ(high.preset_name, "sdxl-high");
  EXPECT_EQ(high.preset.width, 1024);
  EXPECT_EQ(high.function, "create_image");
  EXPECT_EQ(high.quality, "high");
}

TEST(RoutingRouter, AModelTooLargeForTheDeviceFallsBackAndSaysSo) {
  const std::vector<Model> models = {model("sd15", "sd1", "SD 1.5"),
                                     model("sdxl-base", "sdxl", "SDXL Base")};
  const auto decision =
      route_request(sd_routing_table(), "create_image", "high", models, kGpu8gb);
  EXPECT_EQ(decision.model.id, "sd15");
  EXPECT_EQ(decision.preset_name, "sd15-high");
  ASSERT_EQ(decision.skipped.size(), 1u);
  EXPECT_EQ(decision.skipped[0].reason, SkipReason::kNeedsMoreMemory);
  EXPECT_EQ(decision.skipped[0].model_id, "sdxl-base");
  EXPECT_EQ(decision.skipped[0].message, "SDXL Base needs about 9 GB but this device has 8 GB.");
  EXPECT_EQ(decision.message, "SDXL Base needs about 9 GB but this device has 8 GB; using SD 1.5 "
                              "instead.");
}

TEST(RoutingRouter, MissingAndDisabledModelsAreSkippedWithTheirReasons) {
  Model disabled = model("juggernaut@9", "sdxl", "Juggernaut XL");
  disabled.enabled = false;
  const auto decision = route_request(table_with_ids(), "create_image", "standard",
                                      {disabled, model("dreamshaper@8", "sd1", "DreamShaper 8")},
                                      kGpu24gb);
  EXPECT_EQ(decision.model.id, "dreamshaper@8");
  ASSERT_EQ(decision.skipped.size(), 1u);
  EXPECT_EQ(decision.skipped[0].reason, SkipReason::kDisabled);
  EXPECT_EQ(decision.message, "Juggernaut XL is disabled; using DreamShaper 8 instead.");

  const auto missing = route_request(table_with_ids(), "create_image", "standard",
                                     {model("dreamshaper@8", "sd1")}, kGpu24gb);
  ASSERT_EQ(missing.skipped.size(), 1u);
  EXPECT_EQ(missing.skipped[0].reason, SkipReason::kNotInstalled);
  EXPECT_EQ(missing.skipped[0].model_id, "");
  EXPECT_EQ(missing.skipped[0].message, "Model 'juggernaut@9' is not installed.");

  Model files_gone = model("juggernaut@9", "sdxl", "Juggernaut XL");
  files_gone.installed = false;
  const auto gone = route_request(table_with_ids(), "create_image", "standard",
                                  {files_gone, model("dreamshaper@8", "sd1")}, kGpu24gb);
  ASSERT_EQ(gone.skipped.size(), 1u);
  EXPECT_EQ(gone.skipped[0].reason, SkipReason::kNotInstalled);
  EXPECT_EQ(gone.skipped[0].model_id, "juggernaut@9");
  EXPECT_EQ(gone.skipped[0].message, "Juggernaut XL is not installed (its files are missing).");
}

TEST(RoutingRouter, AFamilyTakesAnInstalledEnabledModelPreferringRealOnes) {
  Model tiny = model("a-tiny", "sd1");
  tiny.test_model = true;
  Model disabled = model("b-disabled", "sd1");
  disabled.enabled = false;
  Model lora = model("a-lora", "sd1");
  lora.kind = "loras";
  const std::vector<Model> models = {tiny, disabled, lora, model("z-real", "sd1"),
                                     model("y-real", "sd1")};
  const auto decision = route_request(sd_routing_table(), "create_image", "low", models,
                                      kGpu24gb);
  EXPECT_EQ(decision.model.id, "y-real");
  const auto only_test = route_request(sd_routing_table(), "create_image", "low",
                                       {tiny, disabled}, kGpu24gb);
  EXPECT_EQ(only_test.model.id, "a-tiny");
}

TEST(RoutingRouter, AFamilyWithOnlyDisabledOrNoModelsIsSkipped) {
  Model disabled = model("sdxl-base", "sdxl", "SDXL Base");
  disabled.enabled = false;
  const auto decision = route_request(sd_routing_table(), "create_image", "high",
                                      {disabled, model("sd15", "sd1", "SD 1.5")}, kGpu24gb);
  ASSERT_EQ(decision.skipped.size(), 1u);
  EXPECT_EQ(decision.skipped[0].reason, SkipReason::kDisabled);
  EXPECT_EQ(decision.skipped[0].model_id, "sdxl-base");
  EXPECT_EQ(decision.skipped[0].message, "Every installed SDXL model is disabled.");

  const auto none = route_request(sd_routing_table(), "create_image", "high",
                                  {model("sd15", "sd1", "SD 1.5")}, kGpu24gb);
  EXPECT_EQ(none.message, "No SDXL model is installed; using SD 1.5 instead.");
}

TEST(RoutingRouter, PresetsAreResolvedForTheDeviceClass) {
  const DeviceProfile cpu{DeviceClass::kCpu, 32768};
  const auto decision = route_request(sd_routing_table(), "create_image", "standard",
                                      {model("sd15", "sd1")}, cpu);
  EXPECT_EQ(decision.preset, default_routing_table().presets.preset_for("sd15-standard",
                                                                         DeviceClass::kCpu));
  EXPECT_EQ(decision.preset.steps, 20);
}

TEST(RoutingRouter, NothingThatCanRunIsAModelNotFoundErrorWithEveryReason) {
  const std::vector<Model> models = {model("sdxl-base", "sdxl", "SDXL Base")};
  const Error error = test::error_of(
      [&] { route_request(sd_routing_table(), "create_image", "high", models, kGpu8gb); });
  EXPECT_EQ(error.code(), ErrorCode::kModelNotFound);
  EXPECT_EQ(std::string(error.what()),
            "No installed model can create an image at high quality on this device. SDXL Base "
            "needs about 9 GB but this device has 8 GB. No SD 1.5 model is installed.");
  EXPECT_EQ(error.details()["function"], "create_image");
  EXPECT_EQ(error.details()["quality"], "high");
  ASSERT_EQ(error.details()["skipped"].size(), 2u);
  EXPECT_EQ(error.details()["skipped"][0]["reason"], "needs_more_memory");
  EXPECT_EQ(error.details()["skipped"][0]["model"], "sdxl-base");
  EXPECT_EQ(error.details()["skipped"][1]["reason"], "not_installed");
  EXPECT_EQ(error.details()["skipped"][1]["family"], "sd1");
}

TEST(RoutingRouter, UnknownFunctionOrQualityIsAValidationError) {
  EXPECT_EQ(test::error_code_of([] {
              route_request(sd_routing_table(), "paint", "low", {}, kGpu8gb);
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of([] {
              route_request(sd_routing_table(), "create_image", "best", {}, kGpu8gb);
            }),
            ErrorCode::kInvalidArgument);
}

TEST(RoutingRouter, TheDecisionAsJson) {
  const auto decision = route_request(sd_routing_table(), "create_image", "high",
                                      {model("sd15", "sd1", "SD 1.5")}, kGpu8gb);
  const json record = routing_decision_to_json(decision);
  EXPECT_EQ(record["function"], "create_image");
  EXPECT_EQ(record["quality"], "high");
  EXPECT_EQ(record["model_id"], "sd15");
  EXPECT_EQ(record["preset"], "sd15-high");
  EXPECT_EQ(record["preset_values"]["width"], 768);
  EXPECT_EQ(record["fell_back"], true);
  EXPECT_EQ(record["skipped"],
            json::parse(R"([{"model": "", "family": "sdxl", "preset": "sdxl-high",
                             "reason": "not_installed",
                             "message": "No SDXL model is installed."}])"));
  EXPECT_EQ(record["message"], decision.message);
}

TEST(RoutingRouter, FluxTakesEachTierWhenInstalledWithFp8ForStandardAndFullWeightsForHigh) {
  Model schnell = model("flux1-schnell", "flux_schnell", "FLUX.1 schnell");
  Model dev_fp8 = model("flux1-dev-fp8", "flux", "FLUX.1 dev fp8");
  dev_fp8.weight_dtype = "fp8";
  Model dev = model("flux1-dev", "flux", "FLUX.1 dev");
  dev.weight_dtype = "bf16";
  const std::vector<Model> models = {model("sd15", "sd1"), dev, dev_fp8, schnell};
  const auto& table = default_routing_table();
  const auto low = route_request(table, "create_image", "low", models, kGpu24gb);
  EXPECT_EQ(low.model.id, "flux1-schnell");
  EXPECT_EQ(low.preset_name, "flux-schnell");
  EXPECT_EQ(low.preset.steps, 4);
  EXPECT_EQ(low.preset.cfg, 1.0);
  const auto standard = route_request(table, "create_image", "standard", models, kGpu24gb);
  EXPECT_EQ(standard.model.id, "flux1-dev-fp8");
  EXPECT_EQ(standard.preset_name, "flux-dev-fp8");
  const auto high = route_request(table, "transform_image", "high", models, kGpu24gb);
  EXPECT_EQ(high.model.id, "flux1-dev");
  EXPECT_EQ(high.preset_name, "flux-dev");
  // Only the fp8 model installed: high takes it rather than falling back to SD.
  EXPECT_EQ(route_request(table, "create_image", "high", {dev_fp8}, kGpu24gb).model.id,
            "flux1-dev-fp8");
}

TEST(RoutingRouter, WithoutFluxTheTiersFallBackToSdAndSaySo) {
  const auto& table = default_routing_table();
  const auto low = route_request(table, "create_image", "low", {model("sd15", "sd1", "SD 1.5")},
                                 kGpu24gb);
  EXPECT_EQ(low.model.id, "sd15");
  ASSERT_EQ(low.skipped.size(), 1u);
  EXPECT_EQ(low.skipped[0].candidate.family, "flux_schnell");
  EXPECT_EQ(low.message, "No FLUX.1 schnell model is installed; using SD 1.5 instead.");
  // A CPU machine skips FLUX.1 for memory even when it is installed.
  const DeviceProfile cpu{DeviceClass::kCpu, 32768};
  const auto on_cpu = route_request(
      table, "create_image", "low",
      {model("sd15", "sd1", "SD 1.5"), model("flux1-schnell", "flux_schnell", "FLUX.1 schnell")},
      cpu);
  EXPECT_EQ(on_cpu.model.id, "sd15");
  EXPECT_EQ(on_cpu.skipped[0].reason, SkipReason::kNeedsMoreMemory);
}

}  // namespace
}  // namespace df::registry

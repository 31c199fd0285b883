// Tests of the routing table: the YAML format, its errors with line numbers, and the built-in
// table against docs/routing.example.yaml.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "registry/routing_table.h"
#include "test_support.h"

namespace df::registry {
namespace {

namespace fs = std::filesystem;

// A complete table with one preset; `extra_routes` replaces the create_image.low chain's text.
std::string table_text(const std::string& low_chain = "      - family: sd1\n"
                                                      "        preset: small\n") {
  std::string text =
      "version: 1\n"
      "presets:\n"
      "  small:\n"
      "    width: 512\n"
      "    height: 512\n"
      "    steps: 20\n"
      "    sampler: euler\n"
      "    scheduler: normal\n"
      "    cfg: 7\n"
      "    memory_mb: 4096\n"
      "routes:\n";
  for (const std::string function : {"create_image", "transform_image"}) {
    text += "  " + function + ":\n";
    for (const std::string quality : {"low", "standard", "high"}) {
      text += "    " + quality + ":\n";
      text += function == "create_image" && quality == "low"
                  ? low_chain
                  : "      - model: dreamshaper@8\n        preset: small\n";
    }
  }
  return text;
}

// The error parsing `text` gives, checked to carry `line`, and its message.
std::string error_at_line(const std::string& text, int line) {
  const Error error = test::error_of([&] { parse_routing_table(text, "routing.yaml"); });
  EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error.details().value("file", ""), "routing.yaml");
  EXPECT_EQ(error.details().value("line", 0), line) << error.what();
  const std::string message = error.what();
  EXPECT_EQ(message.rfind("routing.yaml:" + std::to_string(line) + ": ", 0), 0u) << message;
  return message;
}

void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << text;
}

TEST(RoutingTable, ParsesPresetsAndChains) {
  const RoutingTable table = parse_routing_table(table_text(
                                                     "      - model: juggernaut@9\n"
                                                     "        preset: small\n"
                                                     "      - family: sd1\n"
                                                     "        preset: small\n"),
                                                 "routing.yaml");
  EXPECT_EQ(table.presets.names(), std::vector<std::string>{"small"});
  EXPECT_EQ(table.presets.preset_for("small", DeviceClass::kCpu),
            (Preset{512, 512, 20, "euler", "normal", 7.0, 4096}));
  EXPECT_EQ(table.chain("create_image", "low"),
            (std::vector<RouteCandidate>{{"juggernaut@9", "", "small"}, {"", "sd1", "small"}}));
  EXPECT_EQ(table.chain("transform_image", "high"),
            (std::vector<RouteCandidate>{{"dreamshaper@8", "", "small"}}));
}

TEST(RoutingTable, UnknownFunctionsAndQualitiesAreRejectedWhenLookedUp) {
  const RoutingTable& table = default_routing_table();
  const Error function = test::error_of([&] { table.chain("upscale_image", "low"); });
  EXPECT_EQ(function.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(function.details()["field"], "function");
  expect_contains(function.what(), "create_image, transform_image");
  const Error quality = test::error_of([&] { table.chain("create_image", "ultra"); });
  EXPECT_EQ(quality.details()["field"], "quality");
  expect_contains(quality.what(), "low, standard, high");
}

TEST(RoutingTable, TheBuiltInTableIsTheDocumentedExample) {
  const fs::path example = fs::path(DF_TEST_DATA_DIR) / ".." / ".." / ".." / "docs" /
                           "routing.example.yaml";
  const RoutingTable documented = load_routing_table(example);
  EXPECT_EQ(documented.presets, default_routing_table().presets);
  EXPECT_EQ(documented.routes, default_routing_table().routes);
  EXPECT_EQ(documented, default_routing_table());
}

TEST(RoutingTable, TheBuiltInTableUsesFluxFirstThenSd15ForLowAndStandardAndSdxlForHigh) {
  const RoutingTable& table = default_routing_table();
  for (const auto& function : routing_functions()) {
    EXPECT_EQ(table.chain(function, "low")[0], (RouteCandidate{"", "flux_schnell", "flux-schnell"}));
    EXPECT_EQ(table.chain(function, "low")[1].family, "sd1");
    EXPECT_EQ(table.chain(function, "standard")[0],
              (RouteCandidate{"", "flux", "flux-dev-fp8", "fp8"}));
    EXPECT_EQ(table.chain(function, "standard")[1].family, "sd1");
    EXPECT_EQ(table.chain(function, "high")[0], (RouteCandidate{"", "flux", "flux-dev", "full"}));
    EXPECT_EQ(table.chain(function, "high")[1].family, "sdxl");
    EXPECT_EQ(table.chain(function, "high").back().family, "sd1");
  }
}

TEST(RoutingTable, TheFileUnderTheDataDirectoryWinsOverTheBuiltInTable) {
  test::TestDir dir("df_routing_table_");
  const fs::path file = routing_table_path(dir.path());
  EXPECT_EQ(file, dir.path() / "config" / "routing.yaml");
  EXPECT_EQ(load_routing_table_or_default(file), default_routing_table());
  fs::create_directories(file.parent_path());
  std::ofstream(file) << table_text();
  EXPECT_EQ(load_routing_table_or_default(file).presets.names(), std::vector<std::string>{"small"});
  std::ofstream(file) << "version: 1\npresets: {}\nroutes: [\n";
  const Error error = test::error_of([&] { load_routing_table_or_default(file); });
  EXPECT_EQ(error.details()["file"], file.string());
}

TEST(RoutingTable, AnUnreadableFileIsAnIoError) {
  EXPECT_EQ(test::error_code_of([] { load_routing_table("/nonexistent/routing.yaml"); }),
            ErrorCode::kIo);
}

TEST(RoutingTable, YamlSyntaxErrorsNameTheLine) {
  const std::string message = error_at_line("version: 1\npresets:\n  a: [1, 2\nroutes: {}\n", 4);
  expect_contains(message, "YAML syntax error");
}

TEST(RoutingTable, StructuralErrorsNameTheLine) {
  expect_contains(error_at_line("", 1), "is empty");
  expect_contains(error_at_line("# nothing but a comment\n", 1), "is empty");
  expect_contains(error_at_line("- just\n- a list\n", 1), "must be a mapping");
  expect_contains(error_at_line("version: 2\npresets: {}\nroutes: {}\n", 1), "version must be 1");
  expect_contains(error_at_line("version: 1\nroutes: {}\n", 1), "has no 'presets'");
  expect_contains(error_at_line("version: 1\npresets: {}\nroutes: {}\nmodels: {}\n", 4),
                  "unknown key 'models'");
  expect_contains(error_at_line("version: 1\nversion: 1\npresets: {}\nroutes: {}\n", 2),
                  "'version' appears twice");
}

TEST(RoutingTable, PrewarmNamesModelsToKeepWarm) {
  EXPECT_TRUE(parse_routing_table(table_text(), "routing.yaml").prewarm.empty());
  EXPECT_EQ(parse_routing_table(table_text() + "prewarm: [tiny, sdxl-base]\n", "routing.yaml").prewarm,
            (std::vector<std::string>{"tiny", "sdxl-base"}));
  EXPECT_TRUE(default_routing_table().prewarm.empty());
}

TEST(RoutingTable, PrewarmErrorsNameTheLine) {
  const int line = 32;  // the line after table_text()'s
  expect_contains(error_at_line(table_text() + "prewarm: tiny\n", line), "prewarm must be a list");
  expect_contains(error_at_line(table_text() + "prewarm: [tiny, tiny]\n", line),
                  "'tiny' appears twice in prewarm");
  expect_contains(error_at_line(table_text() + "prewarm: [[tiny]]\n", line), "must be a single value");
  expect_contains(error_at_line(table_text() + "prewarm: ['']\n", line), "a prewarm entry is empty");
}

TEST(RoutingTable, ACandidateMayPreferFp8OrFullWeights) {
  const RoutingTable table = parse_routing_table(
      table_text("      - family: flux\n        weights: fp8\n        preset: small\n"
                 "      - family: flux\n        weights: full\n        preset: small\n"),
      "routing.yaml");
  EXPECT_EQ(table.chain("create_image", "low")[0], (RouteCandidate{"", "flux", "small", "fp8"}));
  EXPECT_EQ(table.chain("create_image", "low")[1].weights, "full");
}

TEST(RoutingTable, ChainErrorsNameTheLine) {
  // Line 12 is create_image, 13 low, 14 its first candidate.
  expect_contains(error_at_line(table_text("      - family: kandinsky\n        preset: small\n"), 14),
                  "unknown family 'kandinsky'");
  expect_contains(error_at_line(table_text("      - family: sd1\n        preset: big\n"), 15),
                  "unknown preset 'big'; known presets: small");
  expect_contains(error_at_line(table_text("      - family: sd1\n"
                                           "        model: x\n"
                                           "        preset: small\n"),
                                14),
                  "either a model or a family");
  expect_contains(error_at_line(table_text("      - preset: small\n"), 14),
                  "either a model or a family");
  expect_contains(error_at_line(table_text("      - family: flux\n"
                                           "        weights: fp4\n"
                                           "        preset: small\n"),
                                15),
                  "unknown weights 'fp4'; expected fp8 or full");
  expect_contains(error_at_line(table_text("      - family: sd1\n"), 14), "has no 'preset'");
  expect_contains(error_at_line(table_text("      []\n"), 14), "must be a list of candidates");
  expect_contains(error_at_line(table_text("      - family: sd1\n"
                                           "        preset: small\n"
                                           "        weight: 2\n"),
                                16),
                  "unknown key 'weight'");
}

TEST(RoutingTable, AMissingFunctionOrQualityIsNamed) {
  std::string text = table_text();
  text = text.substr(0, text.find("  transform_image:"));
  expect_contains(error_at_line(text, 11), "no chain for transform_image.low");
  expect_contains(error_at_line(table_text() + "  edit_image: {}\n", 32),
                  "unknown key 'edit_image'");
}

TEST(RoutingTable, PresetErrorsNameTheLineOfTheBadValue) {
  std::string text = table_text();
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string copy = text;
    copy.replace(copy.find(from), from.size(), to);
    return copy;
  };
  expect_contains(error_at_line(replaced("width: 512", "width: 500"), 4),
                  "preset 'small': width must be a multiple of 8");
  expect_contains(error_at_line(replaced("steps: 20", "steps: many"), 6),
                  "steps must be a whole number");
  expect_contains(error_at_line(replaced("cfg: 7", "cfg: 7.5x"), 9), "cfg must be a number");
  expect_contains(error_at_line(replaced("sampler: euler", "sampler: no_such_sampler"), 7),
                  "'no_such_sampler' is not one of");
  expect_contains(error_at_line(replaced("    memory_mb: 4096\n", ""), 4), "has no 'memory_mb'");
  expect_contains(error_at_line(replaced("  small:", "  Small:"), 3), "preset name 'Small'");
  expect_contains(error_at_line(replaced("    memory_mb: 4096\n",
                                         "    memory_mb: 4096\n    vae: tiled\n"),
                                11),
                  "unknown key 'vae'");
}

TEST(RoutingTable, DeviceOverridesAreReadAndChecked) {
  const std::string with_cpu = "    memory_mb: 4096\n"
                               "    by_device:\n"
                               "      cpu:\n"
                               "        steps: 12\n"
                               "        memory_mb: 8192\n";
  std::string text = table_text();
  text.replace(text.find("    memory_mb: 4096\n"), 20, with_cpu);
  const RoutingTable table = parse_routing_table(text, "routing.yaml");
  EXPECT_EQ(table.presets.preset_for("small", DeviceClass::kCpu).steps, 12);
  EXPECT_EQ(table.presets.preset_for("small", DeviceClass::kCpu).memory_mb, 8192);
  EXPECT_EQ(table.presets.preset_for("small", DeviceClass::kGpu12gb).steps, 20);

  std::string bad_class = text;
  bad_class.replace(bad_class.find("      cpu:"), 10, "      gpu-16gb:");
  expect_contains(error_at_line(bad_class, 12), "unknown key 'gpu-16gb'");
  std::string bad_value = text;
  bad_value.replace(bad_value.find("steps: 12"), 9, "steps: 0");
  expect_contains(error_at_line(bad_value, 13), "preset 'small' on cpu: steps must be from 1");
  std::string nested = text;
  nested.replace(nested.find("steps: 12"), 9, "by_device: {}");
  expect_contains(error_at_line(nested, 13), "unknown key 'by_device'");
}

}  // namespace
}  // namespace df::registry

// Unit tests for the union of what the native runners and the backends offer.
#include <gtest/gtest.h>

#include "api/runner_offers.h"

namespace df::api {
namespace {

using nlohmann::json;

json loader(json ckpt_choices) {
  return {{"input", {{"required", {{"ckpt_name", {std::move(ckpt_choices), {{"tooltip", "file"}}}},
                                   {"image", {{"a.png"}, {{"image_upload", true}}}},
                                   {"mode", {"COMBO", {{"options", {"fast"}}}}}}}}},
          {"output", {"MODEL"}}};
}

backends::BackendStatus backend(const std::string& name, json object_info,
                                std::map<std::string, std::vector<std::string>> files = {}) {
  backends::BackendStatus status;
  status.spec.name = name;
  status.up = status.discovered = true;
  status.offer.object_info = std::move(object_info);
  status.offer.model_files = std::move(files);
  return status;
}

TEST(RunnerOffers, BackendOnlyClassesComeAsTheBackendDefinesThem) {
  const json pack = {{"PackNode", {{"input", json::object()}, {"output", {"X"}}, {"category", "pack"}}}};
  const json info = union_object_info({{"Loader", loader({"native.safetensors"})}}, {backend("b", pack)});
  EXPECT_EQ(info["PackNode"], pack["PackNode"]);
  EXPECT_TRUE(info.contains("Loader"));
}

TEST(RunnerOffers, SharedClassesOfferEveryRunnersChoicesButNotTheirUploads) {
  json theirs = loader({"native.safetensors", "theirs.safetensors"});
  theirs["input"]["required"]["image"] = {{"backend-input.png"}, {{"image_upload", true}}};
  theirs["input"]["required"]["mode"] = {"COMBO", {{"options", {"fast", "slow"}}}};
  const json info = union_object_info({{"Loader", loader({"native.safetensors"})}},
                                      {backend("b", {{"Loader", theirs}})});
  const json& inputs = info["Loader"]["input"]["required"];
  EXPECT_EQ(inputs["ckpt_name"][0], json({"native.safetensors", "theirs.safetensors"}));
  EXPECT_EQ(inputs["ckpt_name"][1]["tooltip"], "file");  // the native definition stays
  EXPECT_EQ(inputs["image"][0], json({"a.png"}));
  EXPECT_EQ(inputs["mode"][1]["options"], json({"fast", "slow"}));
}

TEST(RunnerOffers, WithoutNativeRunnersOnlyDiscoveredBackendsCount) {
  backends::BackendStatus unknown = backend("new", {{"Hidden", loader({"x.safetensors"})}});
  unknown.discovered = false;
  const json info = union_object_info(json::object(),
                                      {unknown, backend("b", {{"Loader", loader({"b.safetensors"})}}),
                                       backend("c", {{"Loader", loader({"c.safetensors"})}})});
  EXPECT_FALSE(info.contains("Hidden"));
  EXPECT_EQ(info["Loader"]["input"]["required"]["ckpt_name"][0],
            json({"b.safetensors", "c.safetensors"}));
}

TEST(RunnerOffers, OneClassOnly) {
  const json info = union_object_info(json::object(),
                                      {backend("b", {{"A", loader({})}, {"B", loader({})}})}, "B");
  EXPECT_EQ(info.size(), 1u);
  EXPECT_TRUE(info.contains("B"));
}

TEST(RunnerOffers, ModelNamesAreTheUnionInOrder) {
  const auto names = union_model_names(
      {"mine.safetensors"},
      {backend("b", json::object(), {{"loras", {"theirs.safetensors", "mine.safetensors"}}}),
       backend("c", json::object(), {{"vae", {"vae.safetensors"}}})},
      "loras");
  EXPECT_EQ(names, (std::vector<std::string>{"mine.safetensors", "theirs.safetensors"}));
}

}  // namespace
}  // namespace df::api

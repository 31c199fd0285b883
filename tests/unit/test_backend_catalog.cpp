// Unit tests for the backend catalog against fake ComfyUI servers: discovery of node types, model
// files and queue, down and up again with listeners told, fingerprints following object_info.
#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "backends/backend_catalog.h"
#include "core/error.h"
#include "fake_comfy_server.h"

namespace df::backends {
namespace {

using test::FakeComfyServer;

BackendSpec running(const std::string& name, const std::string& url) {
  BackendSpec spec;
  spec.name = name;
  spec.url = url;
  return spec;
}

// Checks `condition` until it holds, for at most a generous bound.
bool eventually(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

// Timing for checks by hand: the offer is read at every check.
constexpr BackendCatalog::Timing kEveryCheck{0, 1000, 5000};

TEST(BackendCatalog, DiscoversNodeTypesModelFilesAndQueue) {
  FakeComfyServer server;
  server.with([](auto& state) { state.pending = 2; });
  BackendCatalog catalog({{running("studio", server.url())}}, kEveryCheck);
  EXPECT_FALSE(catalog.find("studio")->up);
  catalog.check("studio");
  const auto status = catalog.find("studio");
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->up) << status->error;
  EXPECT_TRUE(status->discovered);
  EXPECT_EQ(status->error, "");
  EXPECT_EQ(status->offer.node_types, (std::set<std::string>{"KSampler", "SaveImage"}));
  EXPECT_TRUE(status->offer.object_info.contains("KSampler"));
  EXPECT_EQ(status->offer.model_files.at("checkpoints"),
            (std::vector<std::string>{"sd15.safetensors"}));
  EXPECT_TRUE(status->offer.model_files.at("loras").empty());
  EXPECT_EQ(status->queue_remaining, 2);
  EXPECT_EQ(status->offer.fingerprint.size(), 64u);
  EXPECT_GT(status->checked_ms, 0);
  EXPECT_FALSE(catalog.find("elsewhere").has_value());
  EXPECT_THROW(catalog.check("elsewhere"), Error);
}

TEST(BackendCatalog, StateIsFindWithoutTheOffer) {
  FakeComfyServer server;
  server.with([](auto& state) { state.pending = 2; });
  BackendCatalog catalog({{running("studio", server.url())}}, kEveryCheck);
  catalog.check("studio");
  const auto found = catalog.find("studio");
  const auto state = catalog.state("studio");
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->spec.name, "studio");
  EXPECT_EQ(state->up, found->up);
  EXPECT_EQ(state->discovered, found->discovered);
  EXPECT_EQ(state->queue_remaining, 2);
  EXPECT_EQ(state->checked_ms, found->checked_ms);
  EXPECT_TRUE(state->offer.object_info.empty());
  EXPECT_TRUE(state->offer.node_types.empty());
  EXPECT_EQ(state->offer.fingerprint, "");
  EXPECT_FALSE(catalog.state("elsewhere").has_value());
}

TEST(BackendCatalog, AServerWithoutModelsRouteOffersNoFiles) {
  FakeComfyServer server;
  server.with([](auto& state) { state.has_models_route = false; });
  BackendCatalog catalog({{running("studio", server.url())}}, kEveryCheck);
  catalog.check("studio");
  const auto status = catalog.find("studio");
  EXPECT_TRUE(status->up) << status->error;
  EXPECT_TRUE(status->offer.model_files.empty());
  EXPECT_FALSE(status->offer.node_types.empty());
}

TEST(BackendCatalog, ObjectInfoIsReReadOnlyWhenDueButTheQueueAlways) {
  FakeComfyServer server;
  BackendCatalog catalog({{running("studio", server.url())}}, {3'600'000, 1000, 5000});
  catalog.check("studio");
  server.with([](auto& state) { state.running = 1; });
  catalog.check("studio");
  EXPECT_EQ(server.count("/object_info"), 1);
  EXPECT_EQ(server.count("/queue"), 2);
  EXPECT_EQ(catalog.find("studio")->queue_remaining, 1);
}

TEST(BackendCatalog, FingerprintFollowsObjectInfoAndListenersHearOfIt) {
  FakeComfyServer server;
  BackendCatalog catalog({{running("studio", server.url())}}, kEveryCheck);
  std::vector<BackendStatus> heard;
  catalog.on_change([&](const BackendStatus& status) { heard.push_back(status); });
  catalog.check("studio");
  ASSERT_EQ(heard.size(), 1u);  // came up
  EXPECT_TRUE(heard[0].up);
  const std::string before = catalog.find("studio")->offer.fingerprint;

  catalog.check("studio");
  EXPECT_EQ(heard.size(), 1u);  // nothing changed
  EXPECT_EQ(catalog.find("studio")->offer.fingerprint, before);

  server.with([](auto& state) { state.object_info["CustomNode"] = {{"input", nlohmann::json::object()}}; });
  catalog.check("studio");
  ASSERT_EQ(heard.size(), 2u);
  EXPECT_NE(heard[1].offer.fingerprint, before);
  EXPECT_TRUE(heard[1].offer.node_types.contains("CustomNode"));

  const std::string with_node = heard[1].offer.fingerprint;
  server.with([](auto& state) { state.models["loras"].push_back("style.safetensors"); });
  catalog.check("studio");
  ASSERT_EQ(heard.size(), 3u);
  EXPECT_NE(heard[2].offer.fingerprint, with_node);
}

TEST(BackendCatalog, GoesDownWithTheErrorKeepsTheOfferAndComesBack) {
  FakeComfyServer server;
  BackendCatalog catalog({{running("studio", server.url())}}, {0, 20, 2000});
  std::atomic<int> downs = 0;
  std::atomic<int> ups = 0;
  catalog.on_change([&](const BackendStatus& status) { (status.up ? ups : downs)++; });
  catalog.start();
  EXPECT_TRUE(catalog.find("studio")->up);
  EXPECT_EQ(ups, 1);

  server.stop();
  ASSERT_TRUE(eventually([&] { return !catalog.find("studio")->up; }));
  const auto down = catalog.find("studio");
  EXPECT_NE(down->error.find(server.url()), std::string::npos) << down->error;
  EXPECT_TRUE(down->discovered);
  EXPECT_TRUE(down->offer.node_types.contains("KSampler"));
  EXPECT_GT(down->changed_ms, 0);
  EXPECT_TRUE(eventually([&] { return downs == 1; }));

  server.restart();
  ASSERT_TRUE(eventually([&] { return catalog.find("studio")->up; }));
  EXPECT_EQ(catalog.find("studio")->error, "");
  EXPECT_TRUE(eventually([&] { return ups == 2; }));
}

TEST(BackendCatalog, MarkDownIsImmediateAndTheProbeBringsItBack) {
  FakeComfyServer server;
  BackendCatalog catalog({{running("studio", server.url())}}, {0, 20, 2000});
  std::atomic<int> changes = 0;
  catalog.on_change([&](const BackendStatus&) { changes++; });
  catalog.start();
  ASSERT_TRUE(catalog.find("studio")->up);
  catalog.mark_down("studio", "connection refused mid-job");
  // Either still down with the reason or already back up: never up with an error.
  const auto marked = catalog.find("studio");
  EXPECT_TRUE(!marked->up ? marked->error == "connection refused mid-job" : marked->error.empty());
  EXPECT_TRUE(eventually([&] { return catalog.find("studio")->up && changes >= 3; }));
}

TEST(BackendCatalog, AStartedBackendNotRunningIsDownAsNotStarted) {
  FakeComfyServer server;
  const std::string url = server.url();
  server.stop();  // nothing listens on its port
  BackendSpec spec;
  spec.name = "local";
  spec.command = {"comfyui", "--port", "{port}"};
  spec.port = std::stoi(url.substr(url.rfind(':') + 1));
  BackendCatalog catalog({{spec}}, {0, 1000, 2000});
  catalog.start();
  const auto status = catalog.find("local");
  EXPECT_FALSE(status->up);
  EXPECT_FALSE(status->discovered);
  EXPECT_TRUE(status->error.starts_with("not started")) << status->error;
}

TEST(BackendCatalog, SnapshotKeepsTheConfigOrderAndStopsPromptly) {
  FakeComfyServer first;
  FakeComfyServer second;
  auto catalog = std::make_unique<BackendCatalog>(
      BackendConfig{{running("b", first.url()), running("a", second.url())}},
      BackendCatalog::Timing{});
  catalog->start();
  const auto statuses = catalog->snapshot();
  ASSERT_EQ(statuses.size(), 2u);
  EXPECT_EQ(statuses[0].spec.name, "b");
  EXPECT_EQ(statuses[1].spec.name, "a");
  EXPECT_TRUE(statuses[0].up && statuses[1].up);
  catalog.reset();  // the destructor cuts the wait between rounds short and joins
}

}  // namespace
}  // namespace df::backends

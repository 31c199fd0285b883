// Tests of the DGX-Pixels request handling on a real API, store and model registry: generate makes
// a durable, idempotent job under the client's id, failures name the job, cancel, the model list
// with checkpoints, LoRAs and VAEs, status counts and ping.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "api/api_service.h"
#include "blob/local_blob_store.h"
#include "core/ids.h"
#include "engine/tiny_model.h"
#include "pixels/pixels_messages.h"
#include "pixels/server/pixels_requests.h"
#include "queue/db_queue.h"
#include "registry/model_registry.h"
#include "store/sqlite_store.h"
#include "telemetry/metrics.h"
#include "telemetry/service_metrics.h"
#include "test_support.h"

namespace df::pixels {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

ordered_json generate_message(const std::string& id, const std::string& prompt = "a red potion") {
  return {{"type", "generate"}, {"id", id},          {"prompt", prompt}, {"model", "tiny-sd1"},
          {"size", {64, 64}},   {"steps", 4},        {"cfg_scale", 7.0}};
}

// A file of `bytes` (sparse: nothing is written).
void make_file(const fs::path& path, uintmax_t bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path).close();
  fs::resize_file(path, bytes);
}

class PixelsRequestsTest : public ::testing::Test {
 protected:
  // One tiny model for the whole suite; each test's checkpoints folder links to it.
  static void SetUpTestSuite() {
    shared_model_ =
        new fs::path(fs::temp_directory_path() / ("df_pixels_requests_model_" + random_hex(6)));
    engine::write_tiny_model(shared_model_->string(), engine::Family::kSD1, 1);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*shared_model_);
    delete shared_model_;
    shared_model_ = nullptr;
  }

  void SetUp() override { telemetry::declare_service_metrics(metrics_); }

  static fs::path models_root(const test::TestDir& dir) {
    const fs::path root = dir.path() / "models";
    fs::create_directories(root / "checkpoints");
    fs::create_directory_symlink(*shared_model_, root / "checkpoints" / "tiny-sd1");
    return root;
  }

  json ask(const ordered_json& message) { return requests_.handle(json(message)); }

  static fs::path* shared_model_;
  test::TestDir dir_{"df_pixels_requests_"};
  fs::path models_root_ = models_root(dir_);
  store::SqliteStore store_{(dir_.path() / "jobs.sqlite3").string()};
  blob::LocalBlobStore blobs_{(dir_.path() / "blobs").string(),
                              blob::UrlSigner("pixels-requests-test-key")};
  registry::ModelRegistry models_{store_, (models_root_ / "checkpoints").string(),
                                  registry::RegistryScope::kThisMachine};
  queue::DbQueue queue_{store_};
  api::EventHub hub_;
  telemetry::Metrics metrics_;
  api::WorkflowRouter workflows_{models_, (dir_.path() / "input").string()};
  api::JobIntake intake_{store_, queue_, metrics_, workflows_};
  api::ApiService api_{store_, blobs_, models_, queue_, hub_, metrics_, intake_, api::ApiSettings{}};
  PixelsRequests requests_{api_, store_, models_, models_root_.string(), "1.2.3"};
};

fs::path* PixelsRequestsTest::shared_model_ = nullptr;

TEST_F(PixelsRequestsTest, GenerateQueuesAJobUnderTheClientsIdWithPreviews) {
  const json reply = ask(generate_message("sprite-1"));
  EXPECT_EQ(reply["type"], "job_accepted");
  EXPECT_EQ(reply["job_id"], "sprite-1");
  EXPECT_GT(reply["estimated_time_s"].get<double>(), 0.0);
  const auto job = store_.get_job("sprite-1");
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->status, JobStatus::kQueued);
  EXPECT_EQ(job->spec["prompt"], "a red potion");
  EXPECT_EQ(job->spec["previews"], true);
  EXPECT_EQ(job->idempotency_key, "dgx-pixels:sprite-1");
}

TEST_F(PixelsRequestsTest, TheSameGenerateAgainIsTheSameJob) {
  const json first = ask(generate_message("sprite-2"));
  const json again = ask(generate_message("sprite-2"));
  EXPECT_EQ(again, first);
  EXPECT_EQ(store_.count_jobs(JobStatus::kQueued), 1);
}

TEST_F(PixelsRequestsTest, TheSameIdWithAnotherRequestIsAJobError) {
  ask(generate_message("sprite-3"));
  const json reply = ask(generate_message("sprite-3", "a blue potion"));
  EXPECT_EQ(reply["type"], "job_error");
  EXPECT_EQ(reply["job_id"], "sprite-3");
  EXPECT_EQ(store_.get_job("sprite-3")->spec["prompt"], "a red potion");
}

TEST_F(PixelsRequestsTest, AnIdComfyUiWouldRefuseIsAJobError) {
  for (const std::string& id : std::vector<std::string>{"has space", std::string(129, 'a'), "a/b"}) {
    const json reply = ask(generate_message(id));
    EXPECT_EQ(reply["type"], "job_error") << id;
    EXPECT_EQ(reply["job_id"], id);
    EXPECT_NE(reply["error"].get<std::string>().find("1-128"), std::string::npos) << reply.dump();
  }
  EXPECT_EQ(store_.count_jobs(JobStatus::kQueued), 0);
}

TEST_F(PixelsRequestsTest, ValidationErrorsAreJobErrorsNamingTheField) {
  ordered_json too_many_steps = generate_message("sprite-4");
  too_many_steps["steps"] = 100000;
  const json steps = ask(too_many_steps);
  EXPECT_EQ(steps["type"], "job_error");
  EXPECT_EQ(steps["job_id"], "sprite-4");
  EXPECT_NE(steps["error"].get<std::string>().find("steps"), std::string::npos) << steps.dump();

  ordered_json no_size = generate_message("sprite-5");
  no_size.erase("size");
  const json size = ask(no_size);
  EXPECT_EQ(size["type"], "job_error");
  EXPECT_EQ(size["job_id"], "sprite-5");
  EXPECT_NE(size["error"].get<std::string>().find("size"), std::string::npos) << size.dump();
}

TEST_F(PixelsRequestsTest, AnUnknownModelIsAJobErrorNamingIt) {
  ordered_json message = generate_message("sprite-6");
  message["model"] = "no-such-model";
  const json reply = ask(message);
  EXPECT_EQ(reply["type"], "job_error");
  EXPECT_NE(reply["error"].get<std::string>().find("no-such-model"), std::string::npos)
      << reply.dump();
}

TEST_F(PixelsRequestsTest, ModelsMayBeNamedByFamily) {
  ordered_json message = generate_message("sprite-7");
  message["model"] = "sd1";
  EXPECT_EQ(ask(message)["type"], "job_accepted");
  EXPECT_EQ(store_.get_job("sprite-7")->spec["model_id"], "tiny-sd1");
}

TEST_F(PixelsRequestsTest, CancelStopsAQueuedJobOnceAndNamesUnknownJobs) {
  ask(generate_message("sprite-8"));
  EXPECT_EQ(ask({{"type", "cancel"}, {"job_id", "sprite-8"}}),
            json({{"type", "job_cancelled"}, {"job_id", "sprite-8"}}));
  EXPECT_EQ(store_.get_job("sprite-8")->status, JobStatus::kCanceled);
  const json again = ask({{"type", "cancel"}, {"job_id", "sprite-8"}});
  EXPECT_EQ(again["type"], "job_error");
  EXPECT_EQ(again["job_id"], "sprite-8");
  const json unknown = ask({{"type", "cancel"}, {"job_id", "nothing"}});
  EXPECT_EQ(unknown["type"], "job_error");
  EXPECT_EQ(unknown["job_id"], "nothing");
}

TEST_F(PixelsRequestsTest, ListModelsHasCheckpointsLorasAndVaesWithTheirSizes) {
  make_file(models_root_ / "loras" / "pixel-art.safetensors", (3 << 20) + 100);
  make_file(models_root_ / "vae" / "sdxl_vae.safetensors", 5 << 20);
  const json reply = ask({{"type", "list_models"}});
  ASSERT_EQ(reply["type"], "model_list");
  std::map<std::string, json> by_name;
  for (const auto& model : reply["models"]) by_name[model["name"]] = model;
  ASSERT_EQ(by_name.size(), 3u) << reply.dump();
  EXPECT_EQ(by_name["tiny-sd1"]["model_type"], "checkpoint");
  EXPECT_TRUE(fs::exists(by_name["tiny-sd1"]["path"].get<std::string>()));
  EXPECT_EQ(by_name["pixel-art.safetensors"]["model_type"], "lora");
  EXPECT_EQ(by_name["pixel-art.safetensors"]["size_mb"], 3);
  EXPECT_TRUE(fs::equivalent(by_name["pixel-art.safetensors"]["path"].get<std::string>(),
                             models_root_ / "loras" / "pixel-art.safetensors"));
  EXPECT_EQ(by_name["sdxl_vae.safetensors"]["model_type"], "vae");
  EXPECT_EQ(by_name["sdxl_vae.safetensors"]["size_mb"], 5);
}

TEST_F(PixelsRequestsTest, StatusCountsQueuedAndRunningJobsAndSaysTheVersion) {
  ask(generate_message("sprite-9"));
  ask(generate_message("sprite-10"));
  const json reply = ask({{"type", "status"}});
  EXPECT_EQ(reply["type"], "status_info");
  EXPECT_EQ(reply["version"], "1.2.3");
  EXPECT_EQ(reply["queue_size"], 2);
  EXPECT_EQ(reply["active_jobs"], 0);
  EXPECT_GE(reply["uptime_s"].get<int64_t>(), 0);
}

TEST_F(PixelsRequestsTest, PingIsAnsweredWithPong) {
  EXPECT_EQ(ask({{"type", "ping"}}), json({{"type", "pong"}}));
}

TEST_F(PixelsRequestsTest, UnknownOrMalformedRequestsThrowForTheErrorReply) {
  EXPECT_EQ(test::error_code_of([&] { ask({{"type", "teleport"}}); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of([&] { requests_.handle(json::array({1, 2})); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of([&] { ask({{"type", "cancel"}}); }),
            ErrorCode::kInvalidArgument);
}

TEST(RoughEstimateTest, GrowsWithStepsPixelsAndImages) {
  GenerateRequest request;
  request.width = 1000;
  request.height = 1000;
  request.steps = 20;
  request.batch_size = 2;
  EXPECT_NEAR(rough_estimate_s(request), 0.1 * 20 * 1.0 * 2, 1e-9);
  request.tileset_grid = std::pair{3, 2};
  EXPECT_NEAR(rough_estimate_s(request), 0.1 * 20 * 1.0 * 6, 1e-9);
}

}  // namespace
}  // namespace df::pixels

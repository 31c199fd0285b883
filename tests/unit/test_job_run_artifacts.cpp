// JobRun with a scripted stand-in runner: artifacts sent as a path, base64 data or a URL are stored
// and kept in the output folder; an unsafe artifact name, a malformed event and a runner of another
// protocol version end the job as a runner failure.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "blob/local_blob_store.h"
#include "core/base64.h"
#include "core/files.h"
#include "core/ids.h"
#include "core/sha256.h"
#include "http/router.h"
#include "http/server.h"
#include "queue/db_queue.h"
#include "runner/protocol.h"
#include "store/sqlite_store.h"
#include "telemetry/metrics.h"
#include "telemetry/service_metrics.h"
#include "scripted_runner.h"
#include "test_support.h"
#include "worker/job_run.h"

namespace df::worker {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kImage[] = "not really a png, but bytes all the same";

class JobRunArtifactsTest : public ::testing::Test {
 protected:
  JobRunArtifactsTest() {
    settings_.worker_id = "worker-under-test";
    settings_.output_dir = (dir_.path() / "output").string();
    settings_.temp_dir = (dir_.path() / "temp").string();
    settings_.memory_release_wait_ms = 0;
    telemetry::declare_service_metrics(metrics_);
  }

  // A comfy runner that says hello (protocol `protocol`) and answers a run with `run_events`.
  std::string write_runner(const std::vector<json>& run_events, int protocol = runner::kProtocolVersion) {
    return test::write_scripted_runner(dir_.path(), "comfy", run_events, protocol);
  }

  // Runs one single-item workflow job with the runner at `runner_path`; returns it as it ended.
  Job run_job(const std::string& runner_path) {
    Job job;
    job.id = new_uuid_v7();
    job.type = "workflow";
    job.spec = {{"workflow", {{"9", {{"class_type", "SaveImage"}, {"inputs", json::object()}}}}}};
    job.max_attempts = 1;
    job.created_ms = now_ms();
    store_.create_job(job);
    queue::DbQueue queue(store_);
    auto delivery = queue.claim(settings_.worker_id, 60000, 0);
    EXPECT_TRUE(delivery.has_value());
    RunnerSupervisor supervisor(RunnerSettings{{runner_path}});
    WorkerContext context{store_, queue, blobs_, supervisor, metrics_, settings_, nullptr, nullptr,
                          std::stop_token(), nullptr};
    JobRun(std::move(*delivery), context).execute();
    supervisor_capabilities_ = supervisor.capabilities();
    return *store_.get_job(job.id);
  }

  static json artifact(const std::string& source, const std::string& value,
                       const std::string& filename = "df_00001_.png") {
    return {{"type", "artifact"}, {"id", "r"},        {"item_index", 0}, {"node", "9"},
            {source, value},      {"filename", filename}, {"subfolder", "sub"}, {"kind", "output"},
            {"format", "png"},    {"content_type", "image/png"}, {"width", 8}, {"height", 8}};
  }

  // The job's one stored artifact, whose bytes and output-folder file are the image.
  void expect_stored_image(const Job& job) {
    EXPECT_EQ(job.status, JobStatus::kSucceeded) << job.error.dump();
    const auto artifacts = store_.list_artifacts(job.id);
    ASSERT_EQ(artifacts.size(), 1u);
    const Artifact& stored = artifacts[0];
    const std::string image(kImage);
    EXPECT_EQ(stored.size, static_cast<int64_t>(image.size()));
    EXPECT_EQ(stored.sha256, sha256_hex(image.data(), image.size()));
    EXPECT_EQ(stored.metadata["filename"], "df_00001_.png");
    EXPECT_EQ(stored.metadata["subfolder"], "sub");
    EXPECT_TRUE(stored.key.ends_with(".png")) << stored.key;
    EXPECT_TRUE(blobs_.exists(stored.key));
    const auto kept = read_file_bytes((fs::path(settings_.output_dir) / "sub" / "df_00001_.png").string());
    EXPECT_EQ(std::string(kept.begin(), kept.end()), image);
  }

  test::TestDir dir_{"df_job_run_artifacts_"};
  store::SqliteStore store_{(dir_.path() / "jobs.sqlite3").string()};
  blob::LocalBlobStore blobs_{(dir_.path() / "blobs").string(), blob::UrlSigner("job-run-artifacts-key")};
  telemetry::Metrics metrics_;
  WorkerSettings settings_;
  runner::RunnerCapabilities supervisor_capabilities_;
};

TEST_F(JobRunArtifactsTest, AnArtifactAtAPathIsStoredWhereItLies) {
  const fs::path file = fs::path(settings_.output_dir) / "sub" / "df_00001_.png";
  fs::create_directories(file.parent_path());
  write_file_atomically(file.string(), std::vector<uint8_t>(kImage, kImage + sizeof(kImage) - 1));
  expect_stored_image(run_job(write_runner({artifact("path", file.string())})));
  EXPECT_EQ(supervisor_capabilities_.kind, "comfy");  // the hello's capabilities are kept
}

TEST_F(JobRunArtifactsTest, AnArtifactSentAsDataIsWrittenToTheOutputFolderAndStored) {
  const std::string data = encode_base64(std::vector<uint8_t>(kImage, kImage + sizeof(kImage) - 1));
  expect_stored_image(run_job(write_runner({artifact("data", data)})));
}

TEST_F(JobRunArtifactsTest, AnArtifactAtAUrlIsFetchedIntoTheOutputFolderAndStored) {
  http::Router router;
  router.add("GET", "/view", [](http::Request&) {
    return http::Response::text(200, kImage, "image/png");
  });
  http::Server server(router, http::ServerLimits{});
  server.start("127.0.0.1", 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) +
                          "/view?filename=df_00001_.png&subfolder=sub&type=output";
  expect_stored_image(run_job(write_runner({artifact("url", url)})));
}

TEST_F(JobRunArtifactsTest, AnArtifactNamedOutsideTheOutputFolderIsAProtocolBreak) {
  const std::string data = encode_base64(std::vector<uint8_t>{1, 2, 3});
  const Job job = run_job(write_runner({artifact("data", data, "../escaped.png")}));
  EXPECT_EQ(job.status, JobStatus::kFailed);
  EXPECT_EQ(job.error["code"], "runner_crashed");
  EXPECT_EQ(job.error["details"]["reason"], "protocol");
  EXPECT_NE(job.error["message"].get<std::string>().find("../escaped.png"), std::string::npos);
  EXPECT_FALSE(fs::exists(fs::path(settings_.output_dir) / "escaped.png"));
  EXPECT_TRUE(store_.list_artifacts(job.id).empty());
}

TEST_F(JobRunArtifactsTest, AMalformedEventIsAProtocolBreak) {
  const Job job = run_job(write_runner({{{"type", "progress"}, {"id", "r"}, {"step", "three"}}}));
  EXPECT_EQ(job.status, JobStatus::kFailed);
  EXPECT_EQ(job.error["code"], "runner_crashed");
  EXPECT_EQ(job.error["details"]["reason"], "protocol");
  EXPECT_NE(job.error["message"].get<std::string>().find("'step'"), std::string::npos);
}

TEST_F(JobRunArtifactsTest, ARunnerOfAnotherProtocolVersionIsRefused) {
  const std::string path = write_runner({}, runner::kProtocolVersion + 1);
  const Job job = run_job(path);
  EXPECT_EQ(job.status, JobStatus::kFailed);
  EXPECT_EQ(job.error["code"], "runner_crashed");
  const std::string message = job.error["message"];
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("scripted-runner"), std::string::npos) << message;
  EXPECT_NE(message.find("version " + std::to_string(runner::kProtocolVersion + 1)), std::string::npos)
      << message;
  EXPECT_NE(message.find("version " + std::to_string(runner::kProtocolVersion)), std::string::npos)
      << message;
}

}  // namespace
}  // namespace df::worker

// Unit tests for the one job intake of /v1 and POST /prompt: counted, queued, a caller's id taken
// once (also when two requests race for it), routed to the runners that can run the graph.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "api/comfy_prompts.h"
#include "api/job_intake.h"
#include "core/error.h"
#include "core/ids.h"
#include "queue/db_queue.h"
#include "store/sqlite_store.h"
#include "telemetry/service_metrics.h"
#include "test_graph_support.h"
#include "test_support.h"

namespace df::api {
namespace {

using nlohmann::json;

// A graph every native runner can run without a model: an empty image, saved.
json empty_image_graph() {
  return {{"1", {{"class_type", "EmptyImage"},
                 {"inputs", {{"width", 64}, {"height", 64}, {"batch_size", 1}, {"color", 0}}}}},
          {"2", {{"class_type", "SaveImage"},
                 {"inputs", {{"images", {"1", 0}}, {"filename_prefix", "ComfyUI"}}}}}};
}

class JobIntakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    telemetry::declare_service_metrics(metrics_);
    prompts_.register_routes(router_);
  }

  Job workflow_job(const std::string& id) {
    Job job;
    job.id = id;
    job.type = "workflow";
    job.spec = {{"workflow", empty_image_graph()}, {"count", 1}, {"format", "png"}};
    job.request_hash = "hash";
    job.max_attempts = 1;
    job.created_ms = now_ms();
    return job;
  }

  // The value of the jobs-created counter in /metrics' text.
  std::string jobs_created() const {
    const std::string text = metrics_.render();
    const std::string name = std::string(telemetry::kJobsCreated) + " ";
    const size_t at = text.find("\n" + name);
    if (at == std::string::npos) return "none";
    const size_t start = at + 1 + name.size();
    return text.substr(start, text.find('\n', start) - start);
  }

  http::Response post_prompt(const json& body) {
    http::Request request;
    request.method = "POST";
    request.path = "/prompt";
    request.headers = {{"Content-Type", "application/json"}};
    request.body = body.dump();
    return router_.match(request).handler(request);
  }

  test::TestDir dir_{"df_job_intake_"};
  store::SqliteStore store_{(dir_.path() / "jobs.sqlite3").string()};
  registry::ModelRegistry models_{store_, (dir_.path() / "checkpoints").string(),
                                  registry::RegistryScope::kThisMachine};
  queue::DbQueue queue_{store_};
  telemetry::Metrics metrics_;
  WorkflowRouter workflows_{models_, (dir_.path() / "input").string()};
  JobIntake intake_{store_, queue_, metrics_, workflows_};
  ComfyPrompts prompts_{store_, intake_, 1, {}};
  http::Router router_;
};

TEST_F(JobIntakeTest, ANewJobIsStoredCountedQueuedAndAnnounced) {
  std::vector<std::string> announced;
  const auto result = intake_.create(workflow_job("job-1"),
                                     [&](const Job& job) { announced.push_back(job.id); });
  EXPECT_TRUE(result.created);
  EXPECT_EQ(announced, std::vector<std::string>{"job-1"});
  EXPECT_EQ(jobs_created(), "1");
  EXPECT_EQ(store_.count_jobs(JobStatus::kQueued), 1);
}

TEST_F(JobIntakeTest, AnIdUsedTwiceIsAConflictAndCountedOnce) {
  intake_.create(workflow_job("same"));
  const Error error = graph_test::expect_error([&] { intake_.create(workflow_job("same")); },
                                         ErrorCode::kConflict);
  EXPECT_EQ(error.details()["job_id"], "same");
  EXPECT_EQ(jobs_created(), "1");
}

TEST_F(JobIntakeTest, TwoRacingCreatesOfOneIdGiveOneJobAndOneConflict) {
  std::atomic<int> created{0};
  std::atomic<int> conflicts{0};
  auto create = [&] {
    try {
      if (intake_.create(workflow_job("raced")).created) ++created;
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kConflict) ++conflicts;
    }
  };
  std::thread first(create);
  std::thread second(create);
  first.join();
  second.join();
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(conflicts.load(), 1);
  EXPECT_EQ(jobs_created(), "1");
}

TEST_F(JobIntakeTest, PromptsAreCountedRoutedAndAReusedPromptIdIsComfyUIs400) {
  const http::Response first = post_prompt({{"prompt", empty_image_graph()}, {"prompt_id", "p-1"}});
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(jobs_created(), "1");
  EXPECT_EQ(store_.get_job("p-1")->spec["runners"], json::array({"native"}));

  const http::Response again = post_prompt({{"prompt", empty_image_graph()}, {"prompt_id", "p-1"}});
  EXPECT_EQ(again.status, 400);
  const json error = json::parse(again.body)["error"];
  EXPECT_EQ(error["type"], "invalid_prompt");
  EXPECT_EQ(error["details"], "prompt_id 'p-1' is already used");
  EXPECT_EQ(jobs_created(), "1");
}

TEST_F(JobIntakeTest, APromptNoRunnerCanRunIsRefusedNamingTheMissingNode) {
  json graph = empty_image_graph();
  graph["3"] = {{"class_type", "ImpactWildcardProcessor"}, {"inputs", json::object()}};
  const http::Response refused = post_prompt({{"prompt", graph}});
  EXPECT_EQ(refused.status, 400);
  const json body = json::parse(refused.body);
  EXPECT_EQ(body["error"]["type"], "missing_node_type");
  EXPECT_EQ(body["error"]["extra_info"]["class_type"], "ImpactWildcardProcessor");
  EXPECT_EQ(jobs_created(), "none");
}

TEST_F(JobIntakeTest, AWebhookNeedsAnAllowedTargetAndSomethingToSignIt) {
  Job job = workflow_job("hooked");
  job.webhook = {"http://127.0.0.1:9/hook", {"completed"}, ""};
  http::Caller keyless;
  const Error internal = graph_test::expect_error(
      [&] { intake_.check_webhook(job, keyless, "webhook"); }, ErrorCode::kInvalidArgument);
  EXPECT_EQ(internal.details()["fields"][0]["field"], "webhook");
  EXPECT_NE(std::string(internal.what()).find("loopback"), std::string::npos) << internal.what();

  intake_.set_webhook_rules(webhooks::TargetPolicy({"127.0.0.1"}), false);
  const Error unsigned_hook = graph_test::expect_error(
      [&] { intake_.check_webhook(job, keyless, "webhook"); }, ErrorCode::kInvalidArgument);
  EXPECT_NE(std::string(unsigned_hook.what()).find("DREAMFORGE_WEBHOOK_SECRET"), std::string::npos);

  http::Caller keyed;
  keyed.key_id = "key-7";
  keyed.has_webhook_secret = true;
  intake_.check_webhook(job, keyed, "webhook");
  EXPECT_EQ(job.webhook.key_id, "key-7") << "the key's secret signs it";

  intake_.set_webhook_rules(webhooks::TargetPolicy({"127.0.0.1"}), true);
  intake_.check_webhook(job, keyless, "webhook");
  EXPECT_EQ(job.webhook.key_id, "");
}

TEST_F(JobIntakeTest, APromptsWebhookComesFromExtraData) {
  intake_.set_webhook_rules(webhooks::TargetPolicy({"127.0.0.1"}), true);
  const http::Response created = post_prompt(
      {{"prompt", empty_image_graph()},
       {"prompt_id", "p-hook"},
       {"extra_data", {{"webhook", "http://127.0.0.1:9/in"}, {"webhook_events", {"start", "completed"}}}}});
  ASSERT_EQ(created.status, 200) << created.body;
  const auto job = store_.get_job("p-hook");
  EXPECT_EQ(job->webhook.url, "http://127.0.0.1:9/in");
  EXPECT_EQ(job->webhook.events, (std::vector<std::string>{"start", "completed"}));

  const http::Response refused = post_prompt(
      {{"prompt", empty_image_graph()}, {"extra_data", {{"webhook", "http://10.0.0.1/in"}}}});
  EXPECT_EQ(refused.status, 400);
  const json error = json::parse(refused.body)["error"];
  EXPECT_EQ(error["type"], "invalid_prompt");
  EXPECT_NE(error["details"].get<std::string>().find("private"), std::string::npos) << error;
  EXPECT_EQ(jobs_created(), "1");
}

}  // namespace
}  // namespace df::api

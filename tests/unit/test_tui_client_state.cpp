// Unit tests for the terminal client's state: jobs, items, stages, gallery, models, connection.
#include <gtest/gtest.h>

#include "tui/client_state.h"

namespace df::tui {
namespace {

using nlohmann::json;

pixels::GenerateRequest generate(const std::string& id, int count = 1) {
  pixels::GenerateRequest request;
  request.id = id;
  request.prompt = "a lighthouse";
  request.model = "tiny";
  request.width = 64;
  request.height = 96;
  request.steps = 4;
  request.cfg_scale = 7;
  request.batch_size = count;
  return request;
}

json accepted(const std::string& id) {
  return {{"type", "job_accepted"}, {"job_id", id}, {"estimated_time_s", 3.5}};
}

json progress(const std::string& id, const std::string& stage, double percent, double eta = 2) {
  return {{"type", "progress"}, {"job_id", id}, {"stage", stage}, {"step", 2},
          {"total_steps", 4}, {"percent", percent}, {"eta_s", eta}};
}

TEST(TuiClientState, AcceptedJobIsQueuedWithItsRequestAndEstimate) {
  ClientState state;
  state.on_reply(generate("j1", 2), accepted("j1"));
  ASSERT_EQ(state.jobs().size(), 1u);
  const JobView& job = state.jobs()[0];
  EXPECT_EQ(job.id, "j1");
  EXPECT_EQ(job.model, "tiny");
  EXPECT_EQ(job.count, 2);
  EXPECT_EQ(job.status, JobStatus::kQueued);
  ASSERT_TRUE(job.eta_s.has_value());
  EXPECT_NEAR(*job.eta_s, 3.5, 1e-9);
  EXPECT_EQ(state.job_for_request("j1"), "j1");
  EXPECT_EQ(state.job_for_request("other"), "");
  EXPECT_EQ(state.connection(), Connection::kConnected);
}

TEST(TuiClientState, ProgressSetsStageStepPercentAndEta) {
  ClientState state;
  state.on_reply(generate("j1"), accepted("j1"));
  state.on_update({{"type", "job_started"}, {"job_id", "j1"}, {"timestamp", 1700000000}});
  EXPECT_EQ(state.job("j1")->status, JobStatus::kRunning);
  state.on_update(progress("j1", "sampling", 42.5, 7.25));
  const JobView* job = state.job("j1");
  EXPECT_EQ(job->stage, "sampling");
  EXPECT_EQ(job->step, 2);
  EXPECT_EQ(job->total_steps, 4);
  EXPECT_NEAR(job->percent, 42.5, 1e-9);
  EXPECT_NEAR(*job->eta_s, 7.25, 1e-9);
}

TEST(TuiClientState, ItemsFollowFromPercentAndBatchSize) {
  ClientState state;
  state.on_reply(generate("j1", 4), accepted("j1"));
  state.on_update(progress("j1", "sampling", 37.5));  // item 2 of 4, half done
  EXPECT_EQ(state.job("j1")->current_item(), 2);
  EXPECT_NEAR(state.job("j1")->item_percent(), 50, 1e-6);
  state.on_update(progress("j1", "decoding", 100));
  EXPECT_EQ(state.job("j1")->current_item(), 4);
  EXPECT_NEAR(state.job("j1")->item_percent(), 100, 1e-6);
}

TEST(TuiClientState, JobsOfOtherClientsAreShownFromTheirUpdates) {
  ClientState state;
  state.on_update({{"type", "job_started"}, {"job_id", "theirs"}, {"timestamp", 1}});
  state.on_update(progress("theirs", "encoding", 12));
  ASSERT_EQ(state.jobs().size(), 1u);
  const JobView& job = state.jobs()[0];
  EXPECT_EQ(job.model, "");
  EXPECT_EQ(job.count, 0);
  EXPECT_EQ(job.current_item(), 1);
  EXPECT_NEAR(job.item_percent(), 12, 1e-6);
  EXPECT_EQ(job.stage, "encoding");
}

TEST(TuiClientState, UpdatesBeforeTheReplyKeepTheirProgress) {
  ClientState state;
  state.on_update({{"type", "job_started"}, {"job_id", "j1"}, {"timestamp", 1}});
  state.on_update(progress("j1", "sampling", 50));
  state.on_reply(generate("j1"), accepted("j1"));
  ASSERT_EQ(state.jobs().size(), 1u);
  EXPECT_EQ(state.jobs()[0].status, JobStatus::kRunning);
  EXPECT_EQ(state.jobs()[0].model, "tiny");
  EXPECT_NEAR(state.jobs()[0].percent, 50, 1e-9);
}

TEST(TuiClientState, CompletedJobAddsEveryImageToTheGallery) {
  ClientState state;
  state.on_reply(generate("j1", 2), accepted("j1"));
  state.on_update(
      {{"type", "preview"}, {"job_id", "j1"}, {"image_path", "/tmp/p.png"}, {"step", 3}});
  EXPECT_EQ(state.job("j1")->preview_path, "/tmp/p.png");
  EXPECT_EQ(state.job("j1")->preview_step, 3);
  state.on_update(
      {{"type", "job_finished"}, {"job_id", "j1"}, {"success", true}, {"duration_s", 4.5}});
  state.on_update({{"type", "job_complete"}, {"job_id", "j1"}, {"image_path", "/a/1_0_64x96_5.png"},
                   {"duration_s", 4.5},
                   {"image_paths", {"/a/1_0_64x96_5.png", "/a/1_1_64x96_6.png"}}});
  const JobView* job = state.job("j1");
  EXPECT_EQ(job->status, JobStatus::kDone);
  EXPECT_NEAR(job->percent, 100, 1e-9);
  EXPECT_EQ(job->preview_path, "");
  ASSERT_EQ(state.gallery().size(), 2u);
  EXPECT_EQ(state.gallery()[1].image_path, "/a/1_1_64x96_6.png");
  EXPECT_EQ(state.gallery()[1].job_id, "j1");
  EXPECT_EQ(state.gallery()[1].model, "tiny");
  EXPECT_EQ(state.gallery()[1].width, 64);
  EXPECT_EQ(state.gallery()[1].height, 96);
  EXPECT_NEAR(*state.gallery()[1].duration_s, 4.5, 1e-9);
}

TEST(TuiClientState, CompleteWithOnlyImagePathListsThatImage) {
  ClientState state;
  state.on_update({{"type", "job_complete"}, {"job_id", "x"},
                   {"image_path", "http://h:1/a.png?s=1"}, {"duration_s", 1}});
  ASSERT_EQ(state.gallery().size(), 1u);
  EXPECT_EQ(state.gallery()[0].image_path, "http://h:1/a.png?s=1");
  EXPECT_EQ(state.gallery()[0].width, 0);
  EXPECT_EQ(state.job("x")->count, 1);
}

TEST(TuiClientState, ARepeatedCompleteReplacesTheJobsGalleryEntries) {
  ClientState state;
  const json complete = {{"type", "job_complete"}, {"job_id", "x"}, {"image_path", "/a.png"},
                         {"duration_s", 1}};
  state.on_update(complete);
  state.on_update(complete);
  EXPECT_EQ(state.gallery().size(), 1u);
}

TEST(TuiClientState, FailedJobKeepsItsError) {
  ClientState state;
  state.on_update(
      {{"type", "job_finished"}, {"job_id", "j"}, {"success", false}, {"duration_s", 1}});
  EXPECT_EQ(state.job("j")->status, JobStatus::kFailed);
  state.on_update({{"type", "job_error"}, {"job_id", "j"}, {"error", "out of memory"}});
  EXPECT_EQ(state.job("j")->status, JobStatus::kFailed);
  EXPECT_EQ(state.job("j")->error, "out of memory");
  EXPECT_TRUE(state.gallery().empty());
}

TEST(TuiClientState, CanceledJobsShowCanceled) {
  ClientState state;
  state.on_update(progress("mine", "sampling", 20));
  state.on_reply(pixels::CancelRequest{"mine"}, {{"type", "job_cancelled"}, {"job_id", "mine"}});
  EXPECT_EQ(state.job("mine")->status, JobStatus::kCanceled);
  state.on_update(progress("mine", "sampling", 25));  // a step already under way
  EXPECT_EQ(state.job("mine")->status, JobStatus::kCanceled);
  state.on_update(
      {{"type", "job_finished"}, {"job_id", "mine"}, {"success", false}, {"duration_s", 1}});
  state.on_update({{"type", "job_error"}, {"job_id", "mine"}, {"error", "failed"}});
  EXPECT_EQ(state.job("mine")->status, JobStatus::kCanceled);

  state.on_update({{"type", "job_error"}, {"job_id", "theirs"}, {"error", "job canceled"}});
  EXPECT_EQ(state.job("theirs")->status, JobStatus::kCanceled);
}

TEST(TuiClientState, CancelRefusedIsAnErrorNotAStatusChange) {
  ClientState state;
  state.on_update({{"type", "job_complete"}, {"job_id", "done1234x"}, {"image_path", "/a.png"},
                   {"duration_s", 1}});
  state.on_reply(pixels::CancelRequest{"done1234x"},
                 {{"type", "job_error"}, {"job_id", "done1234x"}, {"error", "already finished"}});
  EXPECT_EQ(state.job("done1234x")->status, JobStatus::kDone);
  EXPECT_EQ(state.last_error(), "job done1234: already finished");
}

TEST(TuiClientState, AJobStartedAgainStartsOver) {
  ClientState state;
  state.on_update(progress("j", "sampling", 60));
  state.on_update({{"type", "job_started"}, {"job_id", "j"}, {"timestamp", 2}});
  EXPECT_EQ(state.job("j")->status, JobStatus::kRunning);
  EXPECT_NEAR(state.job("j")->percent, 0, 1e-9);
  EXPECT_EQ(state.job("j")->stage, "");
}

TEST(TuiClientState, ModelListKeepsCheckpointsForChoosing) {
  ClientState state;
  state.on_reply(pixels::ListModelsRequest{},
                 {{"type", "model_list"},
                  {"models", {{{"name", "tiny"}, {"path", "/m/tiny"}, {"model_type", "checkpoint"},
                               {"size_mb", 3}},
                              {{"name", "style"}, {"path", "/m/l"}, {"model_type", "lora"},
                               {"size_mb", 1}},
                              {{"name", "xl"}, {"path", "/m/xl"}, {"model_type", "checkpoint"},
                               {"size_mb", 6000.0}}}}});
  EXPECT_EQ(state.models().size(), 3u);
  EXPECT_EQ(state.checkpoint_names(), (std::vector<std::string>{"tiny", "xl"}));
}

TEST(TuiClientState, StatusInfoAndServerErrors) {
  ClientState state;
  EXPECT_EQ(state.connection(), Connection::kConnecting);
  state.on_reply(pixels::StatusRequest{}, {{"type", "status_info"}, {"version", "1.2"},
                                           {"queue_size", 3}, {"active_jobs", 1},
                                           {"uptime_s", 10}});
  ASSERT_TRUE(state.status().has_value());
  EXPECT_EQ(state.status()->queue_size, 3);
  EXPECT_EQ(state.status()->active_jobs, 1);
  EXPECT_EQ(state.status()->version, "1.2");
  state.on_reply(generate("j"), {{"type", "error"}, {"message", "unknown model 'x'"}});
  EXPECT_EQ(state.last_error(), "server: unknown model 'x'");
  EXPECT_TRUE(state.jobs().empty());
}

TEST(TuiClientState, UnansweredRequestsMeanReconnecting) {
  ClientState state;
  state.on_request_failed(pixels::StatusRequest{}, true, "no answer in 5000 ms");
  EXPECT_EQ(state.connection(), Connection::kReconnecting);
  EXPECT_EQ(state.last_error(), "");  // the status line says it already
  state.on_request_failed(generate("j"), true, "no answer in 5000 ms");
  EXPECT_EQ(state.last_error(), "no answer in 5000 ms");
  state.on_reply(pixels::PingRequest{}, {{"type", "pong"}});
  EXPECT_EQ(state.connection(), Connection::kConnected);
}

TEST(TuiClientState, MalformedUpdatesAreReportedAndIgnored) {
  ClientState state;
  state.on_update({{"type", "progress"}, {"job_id", "j"}});
  EXPECT_NE(state.last_error().find("bad update"), std::string::npos);
  state.on_update({{"type", "mystery"}, {"job_id", "j"}});
  state.on_update(json::array({1, 2}));
  EXPECT_TRUE(state.jobs().empty());
  EXPECT_NE(state.last_error().find("bad update"), std::string::npos);
}

TEST(TuiClientState, SizeFromArtifactNames) {
  EXPECT_EQ(size_from_image_name("/d/jobs/j/1/1700_0_512x768_42.png"), std::pair(512, 768));
  EXPECT_EQ(size_from_image_name("http://h:1/a/1700_2_64x64_7.webp?expires=1&sig=ab_1x1_2.png"),
            std::pair(64, 64));
  EXPECT_FALSE(size_from_image_name("/tmp/preview.png").has_value());
}

TEST(TuiClientState, NamesOfStatusesAndConnections) {
  EXPECT_STREQ(job_status_name(JobStatus::kQueued), "queued");
  EXPECT_STREQ(job_status_name(JobStatus::kRunning), "running");
  EXPECT_STREQ(job_status_name(JobStatus::kDone), "done");
  EXPECT_STREQ(job_status_name(JobStatus::kFailed), "failed");
  EXPECT_STREQ(job_status_name(JobStatus::kCanceled), "canceled");
  EXPECT_STREQ(connection_name(Connection::kReconnecting), "reconnecting");
}

}  // namespace
}  // namespace df::tui

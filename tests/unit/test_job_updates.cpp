// Unit tests for JobUpdates: the DGX-Pixels updates one job's events make, stage by stage.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "pixels/job_updates.h"

namespace df::pixels {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

constexpr int64_t kStart = 1'700'000'123'456;  // the job's first start, in ms since the epoch

std::string locate(const std::string& key) { return "/data/blobs/" + key; }

Event event(const std::string& type, int64_t at_ms, json data = json::object(),
            std::optional<int> item = std::nullopt) {
  Event e;
  e.job_id = "job-1";
  e.type = type;
  e.item_index = item;
  e.data = std::move(data);
  e.created_ms = at_ms;
  return e;
}

Event node_started(const std::string& class_type, int item, int64_t at_ms = kStart) {
  return event("node_started", at_ms, {{"node", "1"}, {"class_type", class_type}}, item);
}

Event step(int item, int done, int total, int64_t at_ms = kStart) {
  return event("progress", at_ms,
               {{"step", done}, {"total_steps", total}, {"item_progress", 0.5}, {"node", "3"}},
               item);
}

Event output(int item, const std::string& key) {
  return event("artifact", kStart, {{"key", key}, {"kind", "output"}}, item);
}

Event finished(const std::string& status, int64_t at_ms, json error = nullptr) {
  json data = {{"status", status}};
  if (!error.is_null()) data["error"] = std::move(error);
  return event("job_finished", at_ms, data);
}

// The one update `e` makes.
ordered_json only_update(JobUpdates& updates, const Event& e) {
  const auto made = updates.on_event(e);
  EXPECT_EQ(made.size(), 1u) << e.type;
  return made.empty() ? ordered_json() : made.front();
}

double percent_after(JobUpdates& updates, const Event& e) {
  return only_update(updates, e)["percent"].get<double>();
}

TEST(JobUpdatesStages, WeighTheOriginalsSharesAndSumToAHundred) {
  const std::vector<std::pair<Stage, std::string>> stages = {
      {Stage::kInitializing, "initializing"}, {Stage::kLoadingModels, "loading_models"},
      {Stage::kEncoding, "encoding"},         {Stage::kSampling, "sampling"},
      {Stage::kDecoding, "decoding"},         {Stage::kPostProcessing, "post_processing"}};
  const std::vector<double> weights = {2, 10, 3, 80, 4, 1};
  double sum = 0;
  for (size_t i = 0; i < stages.size(); ++i) {
    EXPECT_EQ(stage_name(stages[i].first), stages[i].second);
    EXPECT_DOUBLE_EQ(stage_weight(stages[i].first), weights[i]);
    sum += stage_weight(stages[i].first);
  }
  EXPECT_DOUBLE_EQ(sum, 100.0);
}

TEST(JobUpdatesStages, NodesWorkInTheStageTheirClassSays) {
  EXPECT_EQ(stage_of_node("CheckpointLoaderSimple"), Stage::kLoadingModels);
  EXPECT_EQ(stage_of_node("LoraLoader"), Stage::kLoadingModels);
  EXPECT_EQ(stage_of_node("VAELoader"), Stage::kLoadingModels);
  EXPECT_EQ(stage_of_node("CLIPTextEncode"), Stage::kEncoding);
  EXPECT_EQ(stage_of_node("VAEEncode"), Stage::kEncoding);
  EXPECT_EQ(stage_of_node("KSampler"), Stage::kSampling);
  EXPECT_EQ(stage_of_node("KSamplerAdvanced"), Stage::kSampling);
  EXPECT_EQ(stage_of_node("SamplerCustomAdvanced"), Stage::kSampling);
  EXPECT_EQ(stage_of_node("VAEDecode"), Stage::kDecoding);
  EXPECT_EQ(stage_of_node("VAEDecodeTiled"), Stage::kDecoding);
  EXPECT_EQ(stage_of_node("SaveImage"), Stage::kPostProcessing);
  EXPECT_EQ(stage_of_node("SaveAnimatedWEBP"), Stage::kPostProcessing);
  EXPECT_EQ(stage_of_node("ImageScale"), Stage::kPostProcessing);
  EXPECT_EQ(stage_of_node("EmptyLatentImage"), Stage::kInitializing);
  EXPECT_EQ(stage_of_node("KSamplerSelect"), Stage::kInitializing);
}

TEST(JobUpdates, JobStartedSaysTheStartInUnixSeconds) {
  JobUpdates updates("job-1", locate);
  const ordered_json started = only_update(updates, event("job_started", kStart));
  EXPECT_EQ(started["type"], "job_started");
  EXPECT_EQ(started["job_id"], "job-1");
  EXPECT_EQ(started["timestamp"].get<int64_t>(), 1'700'000'123);
}

TEST(JobUpdates, OneItemMovesThroughTheStagesByTheirWeights) {
  JobUpdates updates("job-1", locate);
  updates.on_event(event("job_started", kStart));
  const ordered_json first = only_update(updates, event("item_started", kStart, {}, 0));
  EXPECT_EQ(first["type"], "progress");
  EXPECT_EQ(first["stage"], "initializing");
  EXPECT_NEAR(first["percent"].get<double>(), 0.0, 1e-9);

  const ordered_json loading = only_update(updates, node_started("CheckpointLoaderSimple", 0));
  EXPECT_EQ(loading["stage"], "loading_models");
  EXPECT_NEAR(loading["percent"].get<double>(), 2.0, 1e-9);
  EXPECT_NEAR(percent_after(updates, node_started("CLIPTextEncode", 0)), 12.0, 1e-9);
  EXPECT_NEAR(percent_after(updates, node_started("EmptyLatentImage", 0)), 12.0, 1e-9);
  EXPECT_NEAR(percent_after(updates, node_started("KSampler", 0)), 15.0, 1e-9);

  const ordered_json quarter = only_update(updates, step(0, 5, 20));
  EXPECT_EQ(quarter["stage"], "sampling");
  EXPECT_EQ(quarter["step"].get<int>(), 5);
  EXPECT_EQ(quarter["total_steps"].get<int>(), 20);
  EXPECT_NEAR(quarter["percent"].get<double>(), 35.0, 1e-9);
  EXPECT_EQ(updates.step(), 5);
  EXPECT_NEAR(percent_after(updates, step(0, 20, 20)), 95.0, 1e-9);

  const ordered_json decoding = only_update(updates, node_started("VAEDecode", 0));
  EXPECT_EQ(decoding["stage"], "decoding");
  EXPECT_NEAR(decoding["percent"].get<double>(), 95.0, 1e-9);
  const ordered_json saving = only_update(updates, node_started("SaveImage", 0));
  EXPECT_EQ(saving["stage"], "post_processing");
  EXPECT_NEAR(saving["percent"].get<double>(), 99.0, 1e-9);
  EXPECT_NEAR(percent_after(updates, event("item_finished", kStart, {}, 0)), 100.0, 1e-9);
  EXPECT_FALSE(updates.finished());
}

TEST(JobUpdates, EverySamplingStepMakesOneUpdate) {
  JobUpdates updates("job-1", locate);
  updates.on_event(event("job_started", kStart));
  updates.on_event(event("item_started", kStart, {}, 0));
  for (int done = 1; done <= 30; ++done) {
    const ordered_json update = only_update(updates, step(0, done, 30));
    EXPECT_EQ(update["step"].get<int>(), done);
  }
}

TEST(JobUpdates, ABatchCountsFinishedItemsAndTheRunningOnesShare) {
  JobUpdates updates("job-1", locate, 4);
  updates.on_event(event("job_started", kStart));
  updates.on_event(event("item_started", kStart, {}, 0));
  updates.on_event(step(0, 20, 20));
  EXPECT_NEAR(percent_after(updates, event("item_finished", kStart, {}, 0)), 25.0, 1e-9);
  EXPECT_NEAR(percent_after(updates, event("item_started", kStart, {}, 1)), 25.0, 1e-9);
  updates.on_event(node_started("KSampler", 1));
  // (1 item done * 100 + (2 + 10 + 3 + 80 * 10/20)) / 4
  EXPECT_NEAR(percent_after(updates, step(1, 10, 20)), 38.75, 1e-9);
}

TEST(JobUpdates, AnItemBeyondTheGivenCountRaisesIt) {
  JobUpdates updates("job-1", locate);
  updates.on_event(event("job_started", kStart));
  updates.on_event(event("item_started", kStart, {}, 0));
  updates.on_event(event("item_finished", kStart, {}, 0));
  EXPECT_NEAR(percent_after(updates, event("item_started", kStart, {}, 1)), 50.0, 1e-9);
  EXPECT_NEAR(percent_after(updates, event("item_finished", kStart, {}, 1)), 100.0, 1e-9);
}

TEST(JobUpdates, StagesDoNotGoBackWithinAnItem) {
  JobUpdates updates("job-1", locate);
  updates.on_event(event("job_started", kStart));
  updates.on_event(event("item_started", kStart, {}, 0));
  // An init image is scaled before sampling: that is not the item's post-processing.
  EXPECT_EQ(only_update(updates, node_started("ImageScale", 0))["stage"], "initializing");
  updates.on_event(step(0, 4, 4));
  EXPECT_EQ(only_update(updates, node_started("VAEDecode", 0))["stage"], "decoding");
  EXPECT_EQ(only_update(updates, node_started("ImageCompositeMasked", 0))["stage"],
            "post_processing");
  // The next tile of a sheet is taken from the batch and decoded after the first was placed.
  EXPECT_EQ(only_update(updates, node_started("LatentFromBatch", 0))["stage"], "post_processing");
  const ordered_json decoded = only_update(updates, node_started("VAEDecode", 0));
  EXPECT_EQ(decoded["stage"], "post_processing");
  EXPECT_NEAR(decoded["percent"].get<double>(), 99.0, 1e-9);
}

TEST(JobUpdates, EtaCarriesThePaceSoFarOn) {
  JobUpdates updates("job-1", locate);
  updates.on_event(event("job_started", kStart));
  EXPECT_NEAR(only_update(updates, event("item_started", kStart, {}, 0))["eta_s"].get<double>(),
              0.0, 1e-9);
  updates.on_event(node_started("KSampler", 0));
  // 35 percent in 10 s: the other 65 take 10 * 65 / 35 s.
  const ordered_json update = only_update(updates, step(0, 5, 20, kStart + 10'000));
  EXPECT_NEAR(update["eta_s"].get<double>(), 10.0 * 65.0 / 35.0, 1e-6);
}

TEST(JobUpdates, EtaIsTheEventsEstimateWhenItHasOne) {
  JobUpdates updates("job-1", locate);
  updates.on_event(event("job_started", kStart));
  updates.on_event(event("item_started", kStart, {}, 0));
  Event estimated = step(0, 5, 20, kStart + 10'000);
  estimated.data["eta_seconds_left"] = 4.5;
  EXPECT_NEAR(only_update(updates, estimated)["eta_s"].get<double>(), 4.5, 1e-9);
}

TEST(JobUpdates, ASucceededJobCompletesWithItsImages) {
  JobUpdates updates("job-1", locate, 2);
  updates.on_event(event("job_started", kStart));
  updates.on_event(event("item_started", kStart, {}, 0));
  EXPECT_TRUE(updates.on_event(output(0, "jobs/job-1/9/a.png")).empty());
  updates.on_event(event("item_finished", kStart, {}, 0));
  updates.on_event(event("item_started", kStart, {}, 1));
  updates.on_event(output(1, "jobs/job-1/9/b.png"));
  updates.on_event(event("item_finished", kStart, {}, 1));
  const auto made = updates.on_event(finished("succeeded", kStart + 2'500));
  ASSERT_EQ(made.size(), 2u);
  EXPECT_EQ(made[0]["type"], "job_finished");
  EXPECT_EQ(made[0]["job_id"], "job-1");
  EXPECT_TRUE(made[0]["success"].get<bool>());
  EXPECT_NEAR(made[0]["duration_s"].get<double>(), 2.5, 1e-9);
  EXPECT_EQ(made[1]["type"], "job_complete");
  EXPECT_EQ(made[1]["image_path"], "/data/blobs/jobs/job-1/9/a.png");
  EXPECT_NEAR(made[1]["duration_s"].get<double>(), 2.5, 1e-9);
  EXPECT_EQ(made[1]["image_paths"],
            json({"/data/blobs/jobs/job-1/9/a.png", "/data/blobs/jobs/job-1/9/b.png"}));
  EXPECT_TRUE(updates.finished());
}

TEST(JobUpdates, ASucceededJobWithoutImagesIsAnError) {
  JobUpdates updates("job-1", locate);
  updates.on_event(event("job_started", kStart));
  const auto made = updates.on_event(finished("succeeded", kStart + 1'000));
  ASSERT_EQ(made.size(), 2u);
  EXPECT_FALSE(made[0]["success"].get<bool>());
  EXPECT_EQ(made[1]["type"], "job_error");
  EXPECT_EQ(made[1]["job_id"], "job-1");
  EXPECT_EQ(made[1]["error"], "the job finished without an image");
}

TEST(JobUpdates, AFailedJobSaysItsError) {
  JobUpdates updates("job-1", locate);
  updates.on_event(event("job_started", kStart));
  updates.on_event(output(0, "partial.png"));
  const auto made = updates.on_event(
      finished("failed", kStart + 1'000,
               {{"code", "oom"}, {"message", "out of memory on cuda:0"}}));
  ASSERT_EQ(made.size(), 2u);
  EXPECT_FALSE(made[0]["success"].get<bool>());
  EXPECT_EQ(made[1]["type"], "job_error");
  EXPECT_EQ(made[1]["error"], "out of memory on cuda:0");
}

TEST(JobUpdates, ACanceledJobSaysSoAndNeverStartedTakesNoTime) {
  JobUpdates updates("job-1", locate);
  const auto made = updates.on_event(
      finished("canceled", kStart,
               {{"code", "canceled"}, {"message", "canceled before it started"}}));
  ASSERT_EQ(made.size(), 2u);
  EXPECT_FALSE(made[0]["success"].get<bool>());
  EXPECT_NEAR(made[0]["duration_s"].get<double>(), 0.0, 1e-9);
  EXPECT_EQ(made[1]["error"], "canceled: canceled before it started");
}

TEST(JobUpdates, ARetryStartsTheUnfinishedItemsOver) {
  JobUpdates updates("job-1", locate, 2);
  updates.on_event(event("job_started", kStart));
  updates.on_event(event("item_started", kStart, {}, 0));
  updates.on_event(output(0, "first.png"));
  updates.on_event(event("item_finished", kStart, {}, 0));
  updates.on_event(event("item_started", kStart, {}, 1));
  updates.on_event(output(1, "lost.png"));  // the runner died before the item finished
  updates.on_event(step(1, 10, 20));
  updates.on_event(event("retry_scheduled", kStart + 5'000));

  updates.on_event(event("job_started", kStart + 6'000));
  EXPECT_EQ(updates.step(), 0);
  EXPECT_NEAR(percent_after(updates, event("item_started", kStart + 6'000, {}, 1)), 50.0, 1e-9);
  updates.on_event(output(1, "second.png"));
  updates.on_event(event("item_finished", kStart + 7'000, {}, 1));
  const auto made = updates.on_event(finished("succeeded", kStart + 8'000));
  ASSERT_EQ(made.size(), 2u);
  EXPECT_NEAR(made[0]["duration_s"].get<double>(), 8.0, 1e-9);
  EXPECT_EQ(made[1]["image_path"], "/data/blobs/first.png");
  EXPECT_EQ(made[1]["image_paths"], json({"/data/blobs/first.png", "/data/blobs/second.png"}));
}

TEST(JobUpdates, EventsWithoutUpdatesMakeNone) {
  JobUpdates updates("job-1", locate);
  updates.on_event(event("job_started", kStart));
  EXPECT_TRUE(updates.on_event(event("job_queued", kStart)).empty());
  EXPECT_TRUE(updates.on_event(event("log", kStart, {{"source", "runner"}}, 0)).empty());
  EXPECT_TRUE(updates.on_event(event("retry_scheduled", kStart)).empty());
  EXPECT_TRUE(updates.on_event(event("artifact", kStart, {{"key", "p.png"}, {"kind", "temp"}}, 0))
                  .empty());
}

TEST(JobUpdates, APreviewIsAtTheCurrentStep) {
  JobUpdates updates("job-1", locate);
  updates.on_event(event("job_started", kStart));
  updates.on_event(event("item_started", kStart, {}, 0));
  updates.on_event(step(0, 7, 20));
  const ordered_json preview = updates.preview("/data/previews/job-1/7.jpg");
  EXPECT_EQ(preview["type"], "preview");
  EXPECT_EQ(preview["job_id"], "job-1");
  EXPECT_EQ(preview["image_path"], "/data/previews/job-1/7.jpg");
  EXPECT_EQ(preview["step"].get<int>(), 7);
}

}  // namespace
}  // namespace df::pixels

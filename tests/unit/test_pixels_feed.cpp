// Tests of the DGX-Pixels job feed on a real store and event hub: a job's updates in order from
// start to image, running jobs taken up from their latest event, latent previews written to files
// and published, and preview folders removed.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/event_hub.h"
#include "core/ids.h"
#include "pixels/server/job_feed.h"
#include "store/sqlite_store.h"
#include "test_support.h"

namespace df::pixels {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

class PixelsFeedTest : public ::testing::Test {
 protected:
  void start_feed(std::chrono::seconds retention = std::chrono::seconds(3600), int page_size = 200) {
    JobFeedSettings settings;
    settings.previews_root = previews_root_.string();
    settings.preview_retention = retention;
    settings.page_size = page_size;
    feed_ = std::make_unique<JobFeed>(
        store_, hub_, [](const std::string& key) { return "/artifacts/" + key; },
        [this](const ordered_json& update) {
          {
            std::lock_guard lock(mutex_);
            updates_.push_back(update);
          }
          published_.notify_all();
        },
        settings);
  }
  void TearDown() override { feed_.reset(); }

  // The updates published so far, once there are at least `count` (after 10 s: what there is).
  std::vector<json> updates(size_t count) {
    std::unique_lock lock(mutex_);
    published_.wait_for(lock, std::chrono::seconds(10), [&] { return updates_.size() >= count; });
    return std::vector<json>(updates_.begin(), updates_.end());
  }
  std::vector<std::string> types(size_t count) {
    std::vector<std::string> names;
    for (const auto& update : updates(count)) names.push_back(update["type"]);
    return names;
  }

  void queue_job(const std::string& id) {
    Job job;
    job.id = id;
    job.type = "generate";
    job.spec = {{"prompt", "a red potion"}, {"count", 1}};
    job.created_ms = now_ms();
    store_.create_job(job);
  }
  // The oldest queued job claimed by a worker: its lease.
  Lease claim() {
    const auto claimed = store_.claim_job("worker-1", 60000);
    EXPECT_TRUE(claimed.has_value());
    return claimed ? Lease{claimed->id, "worker-1", claimed->attempts} : Lease{};
  }
  Lease running_job(const std::string& id) {
    queue_job(id);
    return claim();
  }
  void append(const Lease& lease, const std::string& type, json data = json::object(),
              std::optional<int> item = 0) {
    Event event;
    event.job_id = lease.job_id;
    event.type = type;
    event.item_index = item;
    event.data = std::move(data);
    event.created_ms = now_ms();
    store_.append_event(event, &lease);
    hub_.notify(lease.job_id);
  }
  void finish(const Lease& lease) {
    Event terminal;
    terminal.job_id = lease.job_id;
    terminal.type = "job_finished";
    terminal.data = {{"status", "succeeded"}, {"progress", 1.0}};
    terminal.created_ms = now_ms();
    store_.finish_job(lease, JobStatus::kSucceeded, nullptr, terminal);
    hub_.notify(lease.job_id);
  }
  static LiveImage jpeg(std::vector<uint8_t> bytes) {
    return LiveImage{"3", "image/jpeg", std::move(bytes), ""};
  }

  test::TestDir dir_{"df_pixels_feed_"};
  fs::path previews_root_ = dir_.path() / "temp" / "previews";
  store::SqliteStore store_{(dir_.path() / "jobs.sqlite3").string()};
  api::EventHub hub_;
  std::mutex mutex_;
  std::condition_variable published_;
  std::vector<json> updates_;
  std::unique_ptr<JobFeed> feed_;
};

TEST_F(PixelsFeedTest, AJobsUpdatesArriveInOrderFromStartToItsImage) {
  start_feed();
  const Lease lease = running_job("job-a");
  append(lease, "job_started", json::object(), std::nullopt);
  append(lease, "item_started");
  for (int step = 1; step <= 3; ++step) {
    append(lease, "progress", {{"step", step}, {"total_steps", 3}});
  }
  append(lease, "artifact", {{"kind", "output"}, {"key", "job-a/0.png"}});
  append(lease, "item_finished");
  finish(lease);

  const std::vector<std::string> expected = {"job_started", "progress", "progress", "progress",
                                             "progress",    "progress", "job_finished",
                                             "job_complete"};
  EXPECT_EQ(types(expected.size()), expected);
  const std::vector<json> all = updates(expected.size());
  EXPECT_EQ(all[3]["step"], 2);
  EXPECT_EQ(all.back()["image_path"], "/artifacts/job-a/0.png");
  for (const auto& update : all) EXPECT_EQ(update["job_id"], "job-a");
}

TEST_F(PixelsFeedTest, ARunningJobIsTakenUpFromItsLatestEvent) {
  const Lease lease = running_job("job-b");
  append(lease, "job_started", json::object(), std::nullopt);
  append(lease, "item_started");
  append(lease, "progress", {{"step", 1}, {"total_steps", 4}});
  start_feed();
  append(lease, "progress", {{"step", 2}, {"total_steps", 4}});

  const std::vector<json> all = updates(1);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0]["type"], "progress");
  EXPECT_EQ(all[0]["step"], 2);
  EXPECT_EQ(all[0]["stage"], "sampling");
}

TEST_F(PixelsFeedTest, AJobQueuedPastTheListedPageIsFollowedOnceItRuns) {
  queue_job("job-1-older");  // named in creation order: both may be made in one millisecond
  queue_job("job-2-newer");
  start_feed(std::chrono::seconds(3600), 1);  // the store lists one job of each status a look
  const Lease lease = claim();
  ASSERT_EQ(lease.job_id, "job-1-older");
  append(lease, "job_started", json::object(), std::nullopt);
  append(lease, "item_started");
  append(lease, "progress", {{"step", 1}, {"total_steps", 2}});
  finish(lease);
  const std::vector<std::string> expected = {"job_started", "progress", "progress",
                                             "job_finished", "job_error"};
  EXPECT_EQ(types(expected.size()), expected);
}

TEST_F(PixelsFeedTest, ALatentPreviewOfAFollowedJobIsWrittenAndPublished) {
  start_feed();
  const Lease lease = running_job("job-c");
  append(lease, "job_started", json::object(), std::nullopt);
  append(lease, "progress", {{"step", 2}, {"total_steps", 4}});
  ASSERT_EQ(updates(2).size(), 2u);
  const Job job = *store_.get_job("job-c");
  feed_->on_live_image(job, jpeg({0xff, 0xd8, 0xff, 0xd9}));
  feed_->on_live_image(job, LiveImage{"9", "image/png", {0x89, 'P', 'N', 'G'}, "frame"});

  const std::vector<json> all = updates(3);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[2]["type"], "preview");
  EXPECT_EQ(all[2]["step"], 2);
  const fs::path path = all[2]["image_path"].get<std::string>();
  EXPECT_EQ(path, previews_root_ / "job-c" / "2.jpg");
  EXPECT_EQ(fs::file_size(path), 4u);
  EXPECT_EQ(fs::directory_iterator(previews_root_ / "job-c")->path(), path) << "the PNG is no preview";
}

TEST_F(PixelsFeedTest, PreviewsOfAnUnfollowedJobAreIgnored) {
  start_feed();
  Job stranger;
  stranger.id = "not-a-job";
  feed_->on_live_image(stranger, jpeg({0xff, 0xd8}));
  EXPECT_FALSE(fs::exists(previews_root_ / "not-a-job"));
}

TEST_F(PixelsFeedTest, PreviewsLeftByAnEarlierRunAreRemovedAtStart) {
  fs::create_directories(previews_root_ / "old-job");
  std::ofstream(previews_root_ / "old-job" / "3.jpg") << "jpeg";
  start_feed();
  EXPECT_FALSE(fs::exists(previews_root_ / "old-job"));
  EXPECT_TRUE(fs::is_directory(previews_root_));
}

TEST_F(PixelsFeedTest, AFinishedJobsPreviewsGoAfterTheRetention) {
  start_feed(std::chrono::seconds(0));
  const Lease lease = running_job("job-d");
  append(lease, "job_started", json::object(), std::nullopt);
  append(lease, "progress", {{"step", 1}, {"total_steps", 2}});
  ASSERT_EQ(updates(2).size(), 2u);
  feed_->on_live_image(*store_.get_job("job-d"), jpeg({0xff, 0xd8}));
  ASSERT_EQ(types(3).back(), "preview");
  ASSERT_TRUE(fs::exists(previews_root_ / "job-d" / "1.jpg"));
  finish(lease);
  ASSERT_EQ(types(5).back(), "job_error");  // finished without an image
  // The feed looks at least every poll interval; wait for the folder to go (10 s at most).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (fs::exists(previews_root_ / "job-d") && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(fs::exists(previews_root_ / "job-d"));
}

}  // namespace
}  // namespace df::pixels

// The endpoint's feed: follows every unfinished job's events and publishes the updates they make.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/event_hub.h"
#include "core/job.h"
#include "core/live_image.h"
#include "pixels/job_updates.h"
#include "pixels/server/preview_files.h"
#include "store/store.h"

namespace df::pixels {

struct JobFeedSettings {
  std::string previews_root;  // <data>/temp/previews
  // The store is read at least this often, so that jobs run by workers of other processes
  // (`dreamforge api`, no database news) are followed too.
  std::chrono::milliseconds poll_interval{100};
  std::chrono::seconds preview_retention{3600};  // a finished job's previews stay this long
  int page_size = 200;  // jobs of a status listed, and events read, per store call
};

class JobFeed {
 public:
  using Publish = std::function<void(const nlohmann::ordered_json& update)>;
  using Locate = std::function<std::string(const std::string& key)>;

  // Takes up the jobs running now from their latest event (their earlier events are read, not
  // published), then follows them and every other unfinished job from its start on a thread of
  // its own. `locate` turns artifact keys into image paths; `publish` gets every update, in order
  // per job. Throws what the store throws when it cannot be read now.
  JobFeed(store::Store& store, api::EventHub& hub, Locate locate, Publish publish,
          JobFeedSettings settings);
  ~JobFeed();
  JobFeed(const JobFeed&) = delete;
  JobFeed& operator=(const JobFeed&) = delete;

  // A worker's live image of a running job: a latent preview (JPEG) of a followed job is written to
  // <previews>/<job id>/<step>.jpg and published as a preview update by the feed's thread, after
  // the job's events so far (the latest preview of a job when several wait); anything else is
  // ignored. Safe from any thread.
  void on_live_image(const Job& job, const LiveImage& image);

 private:
  struct Followed {
    JobUpdates updates;
    int64_t last_event_id = 0;
    bool published = false;  // its events made updates (it has started)
  };

  void run(std::stop_token stop);
  // Follows the running and queued jobs not followed yet and returns the running ones, whose
  // events to read. Followed jobs not listed are read now (most finished between looks); those
  // still silent (queued past the listed page) are followed again when they run.
  std::set<std::string> look_at_store();
  // Running jobs, followed from their latest event: the feed tells what happens from now on.
  void take_up_running_jobs();
  // Reads a job's new events and publishes their updates (unless `publish` is false); a job
  // that has finished is no longer followed and its previews go after the retention.
  void read_events(const std::string& job_id, bool publish);
  // Follows a job not followed yet (and not finished while followed).
  void follow(const Job& job);
  // Whether the job is followed or finished while followed.
  bool is_known(const std::string& job_id);
  // Writes a latent preview at the job's current step and publishes it (unless the job finished).
  void publish_preview(const std::string& job_id, const std::vector<uint8_t>& jpeg);
  void remove_expired_previews();
  // Logs the first failure of a series (a database that is down), and the recovery.
  void note_outcome(const std::string& failure);

  store::Store& store_;
  api::EventHub& hub_;
  Locate locate_;
  Publish publish_;
  JobFeedSettings settings_;
  PreviewFiles previews_;
  std::mutex mutex_;  // guards the members below (the hub's and the workers' threads reach them)
  std::condition_variable_any news_arrived_;
  std::set<std::string> news_;  // jobs the hub told of since the thread last looked
  std::map<std::string, std::vector<uint8_t>> pending_previews_;  // the latest JPEG of each job
  std::map<std::string, Followed> followed_;
  // Jobs that finished while followed, by when: their previews go after the retention.
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::string>> finished_;
  std::set<std::string> finished_ids_;
  std::string last_failure_;  // feed thread only
  uint64_t hub_token_ = 0;
  std::jthread thread_;  // last: stops and joins before the members it uses go
};

}  // namespace df::pixels

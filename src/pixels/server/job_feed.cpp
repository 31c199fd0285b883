// Following jobs through the store and the event hub.
#include "pixels/server/job_feed.h"

#include <algorithm>
#include <vector>

#include "telemetry/service_log.h"

namespace df::pixels {

using Clock = std::chrono::steady_clock;

namespace {

// The images the job makes: its items once it has started, else what its spec asks for.
int item_count(const Job& job) {
  if (!job.items.empty()) return static_cast<int>(job.items.size());
  const auto count = job.spec.find("count");
  return count != job.spec.end() && count->is_number_integer() ? std::max(1, count->get<int>()) : 1;
}

}  // namespace

JobFeed::JobFeed(store::Store& store, api::EventHub& hub, Locate locate, Publish publish,
                 JobFeedSettings settings)
    : store_(store),
      hub_(hub),
      locate_(std::move(locate)),
      publish_(std::move(publish)),
      settings_(std::move(settings)),
      previews_(settings_.previews_root) {
  take_up_running_jobs();
  hub_token_ = hub_.subscribe_all([this](const std::string& job_id) {
    {
      std::lock_guard lock(mutex_);
      news_.insert(job_id);
    }
    news_arrived_.notify_one();
  });
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

JobFeed::~JobFeed() {
  hub_.unsubscribe_all(hub_token_);
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
}

void JobFeed::run(std::stop_token stop) {
  auto next_look = Clock::now();
  while (!stop.stop_requested()) {
    std::set<std::string> to_read;
    std::map<std::string, std::vector<uint8_t>> previews;
    {
      std::unique_lock lock(mutex_);
      news_arrived_.wait_until(lock, stop, next_look, [this] { return !news_.empty(); });
      to_read.swap(news_);
      previews.swap(pending_previews_);
    }
    if (stop.stop_requested()) return;
    try {
      if (Clock::now() >= next_look) {
        to_read.merge(look_at_store());
        next_look = Clock::now() + settings_.poll_interval;
      }
      for (const auto& job_id : to_read) read_events(job_id, true);
      for (const auto& [job_id, jpeg] : previews) publish_preview(job_id, jpeg);
      remove_expired_previews();
      note_outcome("");
    } catch (const std::exception& e) {
      note_outcome(e.what());
    }
  }
}

std::set<std::string> JobFeed::look_at_store() {
  std::set<std::string> running;
  std::set<std::string> listed;
  for (const auto status : {JobStatus::kRunning, JobStatus::kQueued}) {
    for (const auto& job : store_.list_jobs({status, settings_.page_size, "", std::nullopt}).jobs) {
      follow(job);
      listed.insert(job.id);
      if (status == JobStatus::kRunning) running.insert(job.id);
    }
  }
  std::vector<std::string> unlisted;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [job_id, followed] : followed_) {
      if (!listed.contains(job_id)) unlisted.push_back(job_id);
    }
  }
  for (const auto& job_id : unlisted) {
    read_events(job_id, true);
    // Still unfinished and silent: a queued job past the listed page. It is followed again once
    // it runs (or the hub tells of it), so that a long queue is not read every look.
    std::lock_guard lock(mutex_);
    const auto it = followed_.find(job_id);
    if (it != followed_.end() && !it->second.published) followed_.erase(it);
  }
  return running;
}

void JobFeed::take_up_running_jobs() {
  for (const auto& job : store_.list_jobs({JobStatus::kRunning, settings_.page_size, "", std::nullopt}).jobs) {
    follow(job);
    read_events(job.id, false);
  }
}

void JobFeed::follow(const Job& job) {
  std::lock_guard lock(mutex_);
  if (followed_.contains(job.id) || finished_ids_.contains(job.id)) return;
  followed_.emplace(job.id, Followed{JobUpdates(job.id, locate_, item_count(job)), 0});
}

bool JobFeed::is_known(const std::string& job_id) {
  std::lock_guard lock(mutex_);
  return followed_.contains(job_id) || finished_ids_.contains(job_id);
}

void JobFeed::read_events(const std::string& job_id, bool publish) {
  if (!is_known(job_id)) {
    const auto job = store_.get_job(job_id);
    if (!job) return;
    follow(*job);
  }
  while (true) {
    int64_t after = 0;
    {
      std::lock_guard lock(mutex_);
      const auto it = followed_.find(job_id);
      if (it == followed_.end()) return;  // finished earlier
      after = it->second.last_event_id;
    }
    const std::vector<Event> events = store_.events_after(job_id, after, settings_.page_size);
    if (events.empty()) return;
    std::vector<nlohmann::ordered_json> updates;
    std::lock_guard lock(mutex_);
    Followed& followed = followed_.at(job_id);
    for (const auto& event : events) {
      for (auto& update : followed.updates.on_event(event)) updates.push_back(std::move(update));
      followed.last_event_id = event.id;
    }
    if (publish) {
      for (const auto& update : updates) publish_(update);
    }
    followed.published = followed.published || !updates.empty();
    if (followed.updates.finished()) {
      followed_.erase(job_id);
      finished_.emplace_back(Clock::now(), job_id);
      finished_ids_.insert(job_id);
      return;
    }
    if (static_cast<int>(events.size()) < settings_.page_size) return;
  }
}

void JobFeed::on_live_image(const Job& job, const LiveImage& image) {
  if (image.media_type != "image/jpeg") return;
  {
    std::lock_guard lock(mutex_);
    if (!followed_.contains(job.id)) return;
    pending_previews_[job.id] = image.bytes;
    news_.insert(job.id);  // its step's progress event is stored by now: read it first
  }
  news_arrived_.notify_one();
}

void JobFeed::publish_preview(const std::string& job_id, const std::vector<uint8_t>& jpeg) {
  int step = 0;
  {
    std::lock_guard lock(mutex_);
    const auto it = followed_.find(job_id);
    if (it == followed_.end()) return;  // finished meanwhile
    step = it->second.updates.step();
  }
  std::string path;
  try {
    path = previews_.write(job_id, step, jpeg);
  } catch (const std::exception& e) {
    telemetry::service_log().error("dreamforge: DGX-Pixels preview of job " + job_id +
                                   " not written: " + e.what());
    return;
  }
  std::lock_guard lock(mutex_);
  const auto it = followed_.find(job_id);
  if (it != followed_.end()) publish_(it->second.updates.preview(path));
}

void JobFeed::remove_expired_previews() {
  std::vector<std::string> expired;
  {
    std::lock_guard lock(mutex_);
    while (!finished_.empty() &&
           Clock::now() - finished_.front().first >= settings_.preview_retention) {
      expired.push_back(finished_.front().second);
      finished_ids_.erase(finished_.front().second);
      finished_.pop_front();
    }
  }
  for (const auto& job_id : expired) previews_.remove(job_id);
}

void JobFeed::note_outcome(const std::string& failure) {
  if (failure == last_failure_) return;
  if (failure.empty()) {
    telemetry::service_log().info("dreamforge: DGX-Pixels updates follow jobs again");
  } else if (last_failure_.empty()) {
    telemetry::service_log().error("dreamforge: DGX-Pixels updates cannot follow jobs: " + failure);
  }
  last_failure_ = failure;
}

}  // namespace df::pixels

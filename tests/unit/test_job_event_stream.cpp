// Tests of a job's Server-Sent Events stream against a real SQLite store: frames, resuming after
// an event id, the end after job_finished, heartbeats, hub wake-ups and large backlogs.
#include <gtest/gtest.h>

#include <chrono>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "api/event_hub.h"
#include "api/job_event_stream.h"
#include "core/ids.h"
#include "store/sqlite_store.h"
#include "test_support.h"

namespace df::api {
namespace {

using nlohmann::json;

// An interval no test waits for: the longest there is (almost 25 days), so that it is also longer
// than most machines have been up, and code that takes the steady clock's epoch (boot) for "long
// ago" fails here, not only on a freshly booted machine.
constexpr int kNever = std::numeric_limits<int>::max();

struct Frame {
  int64_t id = 0;
  std::string event;
  json data;
};

// The event frames of a chunk; "retry:" and comment blocks are skipped.
std::vector<Frame> frames_of(const std::string& chunk) {
  std::vector<Frame> frames;
  size_t start = 0;
  while (start < chunk.size()) {
    const size_t end = chunk.find("\n\n", start);
    EXPECT_NE(end, std::string::npos) << "unterminated block in " << chunk;
    if (end == std::string::npos) break;
    const std::string block = chunk.substr(start, end - start);
    start = end + 2;
    if (block.rfind("id: ", 0) != 0) continue;
    Frame frame;
    const size_t event_at = block.find("\nevent: ");
    const size_t data_at = block.find("\ndata: ");
    frame.id = std::stoll(block.substr(4, event_at - 4));
    frame.event = block.substr(event_at + 8, data_at - event_at - 8);
    frame.data = json::parse(block.substr(data_at + 7));
    frames.push_back(std::move(frame));
  }
  return frames;
}

std::vector<int64_t> ids_of(const std::vector<Frame>& frames) {
  std::vector<int64_t> ids;
  for (const auto& frame : frames) ids.push_back(frame.id);
  return ids;
}

class JobEventStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Job job;
    job.id = job_id_;
    job.type = "generate";
    job.spec = {{"prompt", "x"}};
    job.request_hash = "h";
    job.created_ms = now_ms();
    store_.create_job(job);
  }

  int64_t append(const std::string& type) {
    Event event;
    event.job_id = job_id_;
    event.type = type;
    event.message = type;
    event.data = {{"progress", 0.5}};
    return store_.append_event(event, nullptr);
  }

  int64_t finish_job() {
    auto claimed = store_.claim_job("w1", 60000);
    EXPECT_TRUE(claimed);
    Event terminal;
    terminal.job_id = job_id_;
    terminal.type = "job_finished";
    terminal.data = {{"status", "succeeded"}, {"progress", 1.0}};
    EXPECT_TRUE(store_.finish_job({job_id_, "w1", claimed->attempts}, JobStatus::kSucceeded,
                                  nullptr, terminal));
    return store_.events_after(job_id_, 0, 1000).back().id;
  }

  std::unique_ptr<JobEventStream> stream(int64_t after_id, int heartbeat_ms = kNever,
                                         int store_poll_ms = kNever) {
    return std::make_unique<JobEventStream>(store_, hub_, job_id_, after_id,
                                            StreamSettings{heartbeat_ms, store_poll_ms});
  }

  test::TestDir dir_{"df_job_event_stream_"};
  store::SqliteStore store_{(dir_.path() / "jobs.sqlite3").string()};
  EventHub hub_;
  const std::string job_id_ = new_uuid_v7();
};

TEST_F(JobEventStreamTest, FirstChunkSetsTheRetryAndSendsTheBacklog) {
  const int64_t queued = store_.events_after(job_id_, 0, 10).at(0).id;
  const int64_t log = append("log");
  auto source = stream(0);
  bool finished = false;
  const std::string chunk = source->next_chunk(finished);
  EXPECT_EQ(chunk.rfind("retry: 1000\n\n", 0), 0u) << chunk;
  const auto frames = frames_of(chunk);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].id, queued);
  EXPECT_EQ(frames[0].event, "job_queued");
  EXPECT_EQ(frames[1].id, log);
  EXPECT_EQ(frames[1].event, "log");
  EXPECT_EQ(frames[1].data["id"], log);
  EXPECT_EQ(frames[1].data["job_id"], job_id_);
  EXPECT_EQ(frames[1].data["type"], "log");
  EXPECT_EQ(frames[1].data["progress"], 0.5);
  EXPECT_FALSE(finished);
  EXPECT_EQ(source->next_chunk(finished), "") << "nothing new, no poll or heartbeat due";
  EXPECT_FALSE(finished);
}

TEST_F(JobEventStreamTest, ResumesAfterTheGivenEventId) {
  const int64_t first = append("log");
  const int64_t second = append("progress");
  const int64_t third = append("log");
  bool finished = false;
  const auto frames = frames_of(stream(first)->next_chunk(finished));
  EXPECT_EQ(ids_of(frames), (std::vector<int64_t>{second, third}));
}

TEST_F(JobEventStreamTest, HubNotificationWakesTheServerAndDeliversTheEvent) {
  auto source = stream(0);
  int wakeups = 0;
  source->set_wakeup([&] { ++wakeups; });
  bool finished = false;
  source->next_chunk(finished);
  const int64_t id = append("item_started");
  hub_.notify(job_id_);
  EXPECT_EQ(wakeups, 1);
  const auto frames = frames_of(source->next_chunk(finished));
  EXPECT_EQ(ids_of(frames), (std::vector<int64_t>{id}));
  EXPECT_EQ(source->next_chunk(finished), "");
}

TEST_F(JobEventStreamTest, StoreIsPolledWithoutNews) {
  auto source = stream(0, kNever, 0);
  bool finished = false;
  source->next_chunk(finished);
  const int64_t id = append("log");
  EXPECT_EQ(ids_of(frames_of(source->next_chunk(finished))), (std::vector<int64_t>{id}));
}

TEST_F(JobEventStreamTest, EndsWithJobFinished) {
  auto source = stream(0);
  source->set_wakeup([] {});
  bool finished = false;
  source->next_chunk(finished);
  append("progress");
  const int64_t terminal = finish_job();
  hub_.notify(job_id_);
  const auto frames = frames_of(source->next_chunk(finished));
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().id, terminal);
  EXPECT_EQ(frames.back().event, "job_finished");
  EXPECT_EQ(frames.back().data["data"]["status"], "succeeded");
  EXPECT_TRUE(finished);
}

TEST_F(JobEventStreamTest, WholeHistoryOfAFinishedJobEndsInOneChunk) {
  append("log");
  const int64_t terminal = finish_job();
  bool finished = false;
  const auto frames = frames_of(stream(0)->next_chunk(finished));
  EXPECT_EQ(frames.back().id, terminal);
  EXPECT_TRUE(finished);
}

TEST_F(JobEventStreamTest, ResumingAfterTheFinalEventEndsAtOnce) {
  const int64_t terminal = finish_job();
  auto source = stream(terminal);
  bool finished = false;
  const std::string chunk = source->next_chunk(finished);
  EXPECT_TRUE(frames_of(chunk).empty()) << chunk;
  EXPECT_TRUE(finished);
}

TEST_F(JobEventStreamTest, RunningJobWithNothingNewStaysOpen) {
  const int64_t last = append("log");
  store_.claim_job("w1", 60000);
  bool finished = false;
  auto source = stream(last, kNever, 0);
  source->next_chunk(finished);
  source->next_chunk(finished);
  EXPECT_FALSE(finished);
}

TEST_F(JobEventStreamTest, HeartbeatWhenNothingWasSentForAWhile) {
  auto source = stream(0, 20);
  bool finished = false;
  EXPECT_FALSE(source->next_chunk(finished).empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  EXPECT_EQ(source->next_chunk(finished), ": heartbeat\n\n");
  EXPECT_FALSE(finished);
}

TEST_F(JobEventStreamTest, BacklogLargerThanOneReadIsSentWithoutWaitingForAPoll) {
  std::vector<int64_t> expected = {store_.events_after(job_id_, 0, 1).at(0).id};
  for (int i = 0; i < 250; ++i) expected.push_back(append("progress"));
  auto source = stream(0);
  bool finished = false;
  std::vector<int64_t> sent;
  for (int call = 0; call < 5; ++call) {
    const auto ids = ids_of(frames_of(source->next_chunk(finished)));
    sent.insert(sent.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(sent, expected);
}

TEST_F(JobEventStreamTest, DestroyedStreamIsNoLongerWoken) {
  int wakeups = 0;
  auto source = stream(0);
  source->set_wakeup([&] { ++wakeups; });
  source.reset();
  hub_.notify(job_id_);
  EXPECT_EQ(wakeups, 0);
}

}  // namespace
}  // namespace df::api

// Unit tests for the terminal client's link thread: requests in order, status pings, updates,
// outages and the requests sent again after one.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "tui/link_worker.h"

namespace df::tui {
namespace {

using namespace std::chrono_literals;

// A server that answers what it is asked, or, while `down`, answers nothing.
struct ScriptedServer {
  std::mutex mutex;
  bool down = false;
  std::vector<std::string> asked;  // request types, in order
  std::vector<nlohmann::json> updates;
};

class ScriptedLink : public ServerLink {
 public:
  explicit ScriptedLink(ScriptedServer& server) : server_(server) {}

  nlohmann::json request(const pixels::Request& request) override {
    const nlohmann::json message = pixels::request_message(request);
    std::lock_guard lock(server_.mutex);
    server_.asked.push_back(message["type"].get<std::string>());
    if (server_.down) throw Error(ErrorCode::kUnavailable, "no answer");
    if (message["type"] == "generate") {
      return {{"type", "job_accepted"}, {"job_id", message["id"]}, {"estimated_time_s", 1}};
    }
    if (message["type"] == "status") {
      return {{"type", "status_info"}, {"version", "t"}, {"queue_size", 0}, {"active_jobs", 0},
              {"uptime_s", 1}};
    }
    return {{"type", "pong"}};
  }
  std::vector<nlohmann::json> poll_updates(int wait_ms) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(wait_ms, 5)));
    std::lock_guard lock(server_.mutex);
    return std::exchange(server_.updates, {});
  }
  std::string describe() const override { return "scripted"; }

 private:
  ScriptedServer& server_;
};

pixels::GenerateRequest generate(const std::string& id) {
  pixels::GenerateRequest request;
  request.id = id;
  request.prompt = "p";
  request.model = "tiny";
  request.width = request.height = 64;
  request.steps = 2;
  return request;
}

// Events until `done` says they are enough (at most 10 s).
std::vector<LinkEvent> events_until(
    LinkWorker& worker, const std::function<bool(const std::vector<LinkEvent>&)>& done) {
  std::vector<LinkEvent> events;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done(events) && std::chrono::steady_clock::now() < deadline) {
    for (auto& event : worker.take_events()) events.push_back(std::move(event));
    std::this_thread::sleep_for(2ms);
  }
  return events;
}

std::size_t count_replies(const std::vector<LinkEvent>& events, const std::string& type) {
  return static_cast<std::size_t>(std::count_if(events.begin(), events.end(), [&](const auto& e) {
    return e.kind == LinkEvent::Kind::kReply && e.message["type"] == type;
  }));
}

TEST(TuiLinkWorker, AsksForModelsAndStatusFirstAndSendsRequestsInOrder) {
  ScriptedServer server;
  LinkWorker worker(std::make_unique<ScriptedLink>(server), 60s);
  EXPECT_EQ(worker.description(), "scripted");
  worker.send(generate("a"));
  worker.send(generate("b"));
  const auto events = events_until(worker, [](const auto& e) {
    return count_replies(e, "job_accepted") == 2;
  });
  ASSERT_EQ(count_replies(events, "job_accepted"), 2u);
  std::lock_guard lock(server.mutex);
  ASSERT_GE(server.asked.size(), 4u);
  EXPECT_EQ(server.asked[0], "status");
  EXPECT_EQ(server.asked[1], "list_models");
  EXPECT_EQ(server.asked[2], "generate");
  EXPECT_EQ(server.asked[3], "generate");
  const auto accepted_a = std::find_if(events.begin(), events.end(), [](const auto& e) {
    return e.message.value("job_id", "") == "a";
  });
  ASSERT_NE(accepted_a, events.end());
  EXPECT_EQ(std::get<pixels::GenerateRequest>(accepted_a->request).id, "a");
}

TEST(TuiLinkWorker, PassesUpdatesOnInOrder) {
  ScriptedServer server;
  LinkWorker worker(std::make_unique<ScriptedLink>(server), 60s);
  {
    std::lock_guard lock(server.mutex);
    server.updates = {{{"type", "job_started"}, {"job_id", "x"}}, {{"type", "progress"}}};
  }
  const auto events = events_until(worker, [](const auto& e) {
    return std::count_if(e.begin(), e.end(), [](const auto& x) {
             return x.kind == LinkEvent::Kind::kUpdate;
           }) == 2;
  });
  std::vector<std::string> types;
  for (const auto& event : events) {
    if (event.kind == LinkEvent::Kind::kUpdate) {
      types.push_back(event.message["type"].get<std::string>());
    }
  }
  EXPECT_EQ(types, (std::vector<std::string>{"job_started", "progress"}));
}

TEST(TuiLinkWorker, PingsStatusEveryInterval) {
  ScriptedServer server;
  LinkWorker worker(std::make_unique<ScriptedLink>(server), 20ms);
  const auto events = events_until(worker, [](const auto& e) {
    return count_replies(e, "status_info") >= 3;
  });
  EXPECT_GE(count_replies(events, "status_info"), 3u);
}

TEST(TuiLinkWorker, UnansweredGenerateIsSentAgainWhenTheServerIsBack) {
  ScriptedServer server;
  server.down = true;
  LinkWorker worker(std::make_unique<ScriptedLink>(server), 20ms);
  worker.send(generate("held"));
  auto events = events_until(worker, [](const auto& e) {
    return std::any_of(e.begin(), e.end(), [](const auto& x) {
      return x.kind == LinkEvent::Kind::kFailure &&
             std::holds_alternative<pixels::GenerateRequest>(x.request);
    });
  });
  const auto failure = std::find_if(events.begin(), events.end(), [](const auto& x) {
    return std::holds_alternative<pixels::GenerateRequest>(x.request);
  });
  ASSERT_NE(failure, events.end());
  EXPECT_EQ(failure->kind, LinkEvent::Kind::kFailure);
  EXPECT_TRUE(failure->unavailable);
  {
    std::lock_guard lock(server.mutex);
    server.down = false;
  }
  events = events_until(worker, [](const auto& e) {
    return count_replies(e, "job_accepted") == 1;
  });
  ASSERT_EQ(count_replies(events, "job_accepted"), 1u);
  std::lock_guard lock(server.mutex);
  EXPECT_NE(std::find(server.asked.begin(), server.asked.end(), "list_models"), server.asked.end());
}

}  // namespace
}  // namespace df::tui

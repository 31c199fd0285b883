// Tests of following a prompt on a ComfyUI server (a scripted stand-in on the project's HTTP server):
// /ws messages to events, the /history fallback when the socket drops, errors, cancel and outages.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "backends/comfy_client.h"
#include "backends/comfy_socket.h"
#include "core/error.h"
#include "http/server.h"
#include "image/image.h"
#include "runner/comfy_remote/comfy_prompt.h"

namespace df::runner {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr int kPatienceMs = 30000;
const std::string kPrompt = "prompt-1";

std::string png_bytes(int width, int height) {
  Image8 image{width, height, 3, std::vector<uint8_t>(size_t(width) * height * 3, 128)};
  const std::vector<uint8_t> bytes = encode_image(image, ImageFormat::kPng, {});
  return std::string(bytes.begin(), bytes.end());
}

json message(const std::string& type, json data) { return {{"type", type}, {"data", std::move(data)}}; }

json image_entry(const std::string& filename, const std::string& type = "output") {
  return {{"filename", filename}, {"subfolder", ""}, {"type", type}};
}

// What the stand-in server sends on /ws, answers on /history and /queue, and what it was asked.
struct Script {
  std::mutex mutex;
  std::vector<std::string> frames;  // text frames, or binary ones prefixed with "B:"
  json history = json::object();
  json queue = {{"queue_running", json::array()}, {"queue_pending", json::array()}};
  std::vector<std::string> requests;  // "POST /interrupt {...}" and the like
};

// Sends the script's frames, then closes: the socket drops mid-prompt.
class ScriptedSocket : public http::WebSocketHandler {
 public:
  explicit ScriptedSocket(std::shared_ptr<Script> script) : script_(std::move(script)) {}
  void on_open(std::shared_ptr<http::WebSocketConnection> connection) override {
    std::lock_guard lock(script_->mutex);
    for (const auto& frame : script_->frames) {
      if (frame.starts_with("B:")) {
        connection->send_binary(frame.substr(2));
      } else {
        connection->send_text(frame);
      }
    }
    connection->close();
  }
  void on_text(const std::string&) override {}
  void on_close() override {}

 private:
  std::shared_ptr<Script> script_;
};

class ComfyPromptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.add("GET", "/ws", [this](http::Request&) {
      return http::Response::websocket_upgrade(std::make_shared<ScriptedSocket>(script_));
    });
    router_.add("GET", "/history/{id}", [this](http::Request&) {
      std::lock_guard lock(script_->mutex);
      return http::Response::json(200, script_->history);
    });
    router_.add("GET", "/queue", [this](http::Request&) {
      std::lock_guard lock(script_->mutex);
      return http::Response::json(200, script_->queue);
    });
    for (const char* route : {"/queue", "/interrupt"}) {
      router_.add("POST", route, [this, route](http::Request& request) {
        std::lock_guard lock(script_->mutex);
        script_->requests.push_back(std::string("POST ") + route + " " + request.body);
        return http::Response::json(200, json::object());
      });
    }
    router_.add("GET", "/view", [](http::Request& request) {
      return http::Response::text(200, png_bytes(request.query["filename"] == "b.png" ? 5 : 4, 3), "image/png");
    });
    server_ = std::make_unique<http::Server>(router_, http::ServerLimits{});
    server_->start("127.0.0.1", 0);
    url_ = "http://127.0.0.1:" + std::to_string(server_->port());
    client_ = std::make_unique<backends::ComfyClient>(backends::ComfyEndpoint{url_, "", kPatienceMs});
    dir_ = fs::path(testing::TempDir()) / ("comfy_prompt_" + std::to_string(::getpid()) + "_" +
                                           testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }

  void TearDown() override { fs::remove_all(dir_); }

  PromptItem item(bool previews = false) {
    return {"run-1", 2, 77, json::parse(R"({"3": {"class_type": "KSampler"}, "9": {"class_type": "SaveImage"}})"),
            kPrompt, (dir_ / "out").string(), (dir_ / "temp").string(), previews};
  }

  std::unique_ptr<backends::ComfySocket> socket() {
    return std::make_unique<backends::ComfySocket>(url_, "/ws?clientId=c", std::nullopt, kPatienceMs);
  }

  // Follows `item` with the outage window given; the events emitted, one JSON object each.
  std::vector<json> follow(const PromptItem& followed, std::unique_ptr<backends::ComfySocket> socket,
                           bool canceled = false, int outage_ms = kPatienceMs) {
    BackendCalls calls(url_, outage_ms, 1, [canceled] { return canceled; });
    PromptFollower follower(*client_, calls, events_, [canceled] { return canceled; });
    follower.follow(followed, socket);
    return emitted();
  }

  std::vector<json> emitted() {
    std::vector<json> events;
    std::istringstream lines(output_.str());
    for (std::string line; std::getline(lines, line);) events.push_back(json::parse(line));
    return events;
  }

  void script(std::vector<std::string> frames, json history) {
    std::lock_guard lock(script_->mutex);
    script_->frames = std::move(frames);
    script_->history = std::move(history);
  }

  http::Router router_;
  std::shared_ptr<Script> script_ = std::make_shared<Script>();
  std::unique_ptr<http::Server> server_;
  std::string url_;
  std::unique_ptr<backends::ComfyClient> client_;
  fs::path dir_;
  std::ostringstream output_;
  EventWriter events_{output_};
};

std::vector<json> of_type(const std::vector<json>& events, const std::string& type) {
  std::vector<json> found;
  for (const auto& event : events) {
    if (event["type"] == type) found.push_back(event);
  }
  return found;
}

TEST_F(ComfyPromptTest, ASocketThatDropsFallsBackToHistoryWithoutReportingAFileTwice) {
  const json success_entry = {
      {kPrompt,
       {{"outputs", {{"9", {{"images", json::array({image_entry("a.png"), image_entry("b.png")})}}},
                     {"10", {{"images", json::array({image_entry("t.png", "temp")})}}}}},
        {"status", {{"status_str", "success"}, {"completed", true}, {"messages", json::array()}}}}}};
  std::string preview = std::string("\0\0\0\1\0\0\0\2", 8) + "png bytes";
  script({message("status", {{"status", json::object()}}).dump(),
          message("executed", {{"node", "9"}, {"prompt_id", "someone else's"},
                               {"output", {{"images", json::array({image_entry("x.png")})}}}}).dump(),
          message("executing", {{"node", "3"}, {"prompt_id", kPrompt}}).dump(),
          message("progress", {{"value", 1}, {"max", 4}, {"node", "3"}, {"prompt_id", kPrompt}}).dump(),
          "B:" + preview,
          message("executed", {{"node", "9"}, {"prompt_id", kPrompt},
                               {"output", {{"images", json::array({image_entry("a.png")})}}}}).dump()},
         success_entry);
  const std::vector<json> events = follow(item(true), socket());

  ASSERT_EQ(of_type(events, "executing").size(), 1u);
  EXPECT_EQ(of_type(events, "executing")[0]["class_type"], "KSampler");
  const std::vector<json> progress = of_type(events, "progress");
  ASSERT_EQ(progress.size(), 1u);
  EXPECT_NEAR(progress[0]["progress"].get<double>(), 0.25, 1e-9);
  const std::vector<json> previews = of_type(events, "preview");
  ASSERT_EQ(previews.size(), 1u);
  EXPECT_EQ(previews[0]["format"], "png");
  EXPECT_EQ(previews[0]["node"], "3");

  // a.png from the socket, then what only the history entry names (in its key order: "10", "9").
  const std::vector<json> artifacts = of_type(events, "artifact");
  ASSERT_EQ(artifacts.size(), 3u);
  EXPECT_EQ(artifacts[0]["filename"], "a.png");
  EXPECT_EQ(artifacts[1]["filename"], "t.png");
  EXPECT_EQ(artifacts[1]["kind"], "temp");
  EXPECT_EQ(artifacts[1]["path"], (dir_ / "temp" / "t.png").string());
  const json& b = artifacts[2];
  EXPECT_EQ(b["filename"], "b.png");
  EXPECT_EQ(b["kind"], "output");
  EXPECT_EQ(b["node"], "9");
  EXPECT_EQ(b["path"], (dir_ / "out" / "b.png").string());
  EXPECT_EQ(b["width"], 5);
  EXPECT_EQ(b["height"], 3);
  EXPECT_EQ(b["seed"], 77);
  EXPECT_EQ(b["item_index"], 2);
  EXPECT_EQ(b["content_type"], "image/png");
  EXPECT_EQ(b["bytes"], static_cast<int64_t>(fs::file_size(dir_ / "out" / "b.png")));
  EXPECT_FALSE(fs::exists(dir_ / "out" / "x.png"));
}

TEST_F(ComfyPromptTest, AnExecutionErrorOnTheSocketIsMapped) {
  script({message("execution_error", {{"prompt_id", kPrompt}, {"node_id", "3"}, {"node_type", "KSampler"},
                                      {"exception_type", "torch.OutOfMemoryError"},
                                      {"exception_message", "Allocation on device"}}).dump()},
         json::object());
  try {
    follow(item(), socket());
    FAIL() << "the prompt succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kOutOfMemory);
    EXPECT_EQ(e.details()["node_id"], "3");
  }
}

TEST_F(ComfyPromptTest, WithoutASocketTheHistoryEntrysErrorEndsThePrompt) {
  script({}, {{kPrompt,
               {{"outputs", json::object()},
                {"status", {{"status_str", "error"}, {"completed", false},
                            {"messages", json::array({json::array({"execution_interrupted",
                                                                   {{"prompt_id", kPrompt}, {"node_id", "3"}}})})}}}}}});
  try {
    follow(item(), nullptr);
    FAIL() << "the prompt succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCanceled);
  }
}

TEST_F(ComfyPromptTest, ACancelDeletesAPromptStillQueued) {
  {
    std::lock_guard lock(script_->mutex);
    script_->queue["queue_pending"] = json::array({json::array({1, kPrompt, json::object(), json::object(), json::array()})});
  }
  try {
    follow(item(), nullptr, /*canceled=*/true);
    FAIL() << "the prompt was not canceled";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCanceled);
  }
  std::lock_guard lock(script_->mutex);
  ASSERT_EQ(script_->requests.size(), 1u);
  EXPECT_EQ(json::parse(script_->requests[0].substr(std::string("POST /queue ").size())),
            json({{"delete", {kPrompt}}}));
}

TEST_F(ComfyPromptTest, ACancelInterruptsARunningPrompt) {
  script({}, {{kPrompt,
               {{"status", {{"status_str", "error"},
                            {"messages", json::array({json::array({"execution_interrupted", {{"prompt_id", kPrompt}}})})}}}}}});
  EXPECT_THROW(follow(item(), nullptr, /*canceled=*/true), Error);
  std::lock_guard lock(script_->mutex);
  ASSERT_EQ(script_->requests.size(), 1u);
  EXPECT_EQ(script_->requests[0], "POST /interrupt " + json({{"prompt_id", kPrompt}}).dump());
}

TEST_F(ComfyPromptTest, AServerThatStopsAnsweringIsUnavailable) {
  server_->stop();
  try {
    follow(item(), nullptr, false, /*outage_ms=*/0);
    FAIL() << "the prompt succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(e.what()).find(url_), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace df::runner

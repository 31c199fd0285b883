// Tests of ComfyUI's Logs panel routes and the "logs" messages to subscribed clients.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "api/comfy_logs.h"
#include "core/error.h"

namespace df::api {
namespace {

using nlohmann::json;

class ComfyLogsTest : public ::testing::Test {
 protected:
  http::Response call(const std::string& method, const std::string& path,
                      const std::string& body = "") {
    http::Request request;
    request.method = method;
    request.path = path;
    request.target = path;
    request.body = body;
    return router_.match(request).handler(request);
  }
  void subscribe(const std::string& client, bool enabled) {
    const http::Response response = call("PATCH", "/internal/logs/subscribe",
                                         json{{"clientId", client}, {"enabled", enabled}}.dump());
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body, "");
  }

  std::ostringstream out_, err_;
  telemetry::ServiceLog log_{10, out_, err_};
  std::set<std::string> connected_{"fe-1", "fe-2"};
  std::map<std::string, std::vector<json>> sent_;
  TerminalSize size_{120, 40};
  ComfyLogs logs_{log_,
                  [this](const std::string& client, const json& message) {
                    if (!connected_.count(client)) return false;
                    sent_[client].push_back(message);
                    return true;
                  },
                  [this] { return size_; }};
  http::Router router_ = [this] {
    http::Router router;
    logs_.register_routes(router);
    return router;
  }();
};

TEST_F(ComfyLogsTest, TextJoinsTimesAndLinesAsAJsonString) {
  log_.info("first");
  log_.error("second");
  const http::Response response = call("GET", "/internal/logs");
  EXPECT_EQ(response.status, 200);
  const std::vector<telemetry::LogEntry> entries = log_.entries();
  EXPECT_EQ(json::parse(response.body),
            entries[0].time + " - first\n" + entries[1].time + " - second\n");
}

TEST_F(ComfyLogsTest, RawHasEntriesAndTheTerminalSize) {
  log_.info("hello");
  const json raw = json::parse(call("GET", "/internal/logs/raw").body);
  ASSERT_EQ(raw["entries"].size(), 1u);
  EXPECT_EQ(raw["entries"][0]["m"], "hello\n");
  EXPECT_EQ(raw["entries"][0]["t"], log_.entries()[0].time);
  EXPECT_EQ(raw["size"], (json{{"cols", 120}, {"rows", 40}}));
}

TEST_F(ComfyLogsTest, SubscribedClientsGetNewLinesWithTheSizeOnlyWhenItChanged) {
  log_.info("nobody listens yet");
  subscribe("fe-1", true);
  log_.info("one");
  log_.info("two");
  size_ = {100, 30};
  log_.info("three");
  ASSERT_EQ(sent_["fe-1"].size(), 3u);
  const json& first = sent_["fe-1"][0];
  EXPECT_EQ(first["type"], "logs");
  EXPECT_EQ(first["data"]["entries"][0]["m"], "one\n");
  EXPECT_EQ(first["data"]["size"], (json{{"cols", 120}, {"rows", 40}}));
  EXPECT_TRUE(sent_["fe-1"][1]["data"]["size"].is_null());
  EXPECT_EQ(sent_["fe-1"][2]["data"]["size"], (json{{"cols", 100}, {"rows", 30}}));
  EXPECT_FALSE(sent_.count("fe-2"));
}

TEST_F(ComfyLogsTest, UnsubscribedAndDisconnectedClientsGetNothingMore) {
  subscribe("fe-1", true);
  subscribe("fe-2", true);
  subscribe("gone", true);
  log_.info("one");
  subscribe("fe-2", false);
  connected_.insert("gone");  // reconnected after it was dropped: needs a new subscription
  log_.info("two");
  EXPECT_EQ(sent_["fe-1"].size(), 2u);
  EXPECT_EQ(sent_["fe-2"].size(), 1u);
  EXPECT_FALSE(sent_.count("gone"));
}

TEST_F(ComfyLogsTest, MalformedSubscriptionsAreBadRequests) {
  for (const std::string body : {"", "{", "[]", R"({"clientId": "a"})", R"({"enabled": true})",
                                 R"({"clientId": 5, "enabled": true})",
                                 R"({"clientId": "a", "enabled": "yes"})"}) {
    EXPECT_EQ(call("PATCH", "/internal/logs/subscribe", body).status, 400) << body;
  }
}

TEST_F(ComfyLogsTest, InternalRoutesHaveNoApiTwin) {
  http::Request request;
  request.method = "GET";
  request.path = "/api/internal/logs";
  EXPECT_THROW(router_.match(request), Error);
}

}  // namespace
}  // namespace df::api

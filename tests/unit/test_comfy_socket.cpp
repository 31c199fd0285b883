// Tests of the ComfyUI WebSocket client against the project's own HTTP server.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "backends/comfy_socket.h"
#include "core/error.h"
#include "http/server.h"

namespace df::backends {
namespace {

// Generous bounds: every wait ends as soon as what it waits for happens.
constexpr int kPatienceMs = 30000;

// What the server side saw: the quiet route's connection, and whether a client closed.
struct ServerSide {
  std::mutex mutex;
  std::condition_variable changed;
  bool closed = false;
  std::shared_ptr<http::WebSocketConnection> quiet;

  bool wait(const std::function<bool()>& done) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, std::chrono::milliseconds(kPatienceMs), done);
  }
};

// Greets with the client id and the auth header the upgrade request carried.

class GreetingHandler : public http::WebSocketHandler {
 public:
  GreetingHandler(std::shared_ptr<ServerSide> side, std::string greeting)
      : side_(std::move(side)), greeting_(std::move(greeting)) {}
  void on_open(std::shared_ptr<http::WebSocketConnection> connection) override {
    connection_ = std::move(connection);
    connection_->send_text(greeting_);
  }
  void on_text(const std::string&) override {}
  void on_close() override {
    std::lock_guard lock(side_->mutex);
    side_->closed = true;
    side_->changed.notify_all();
  }

 private:
  std::shared_ptr<ServerSide> side_;
  std::string greeting_;
  std::shared_ptr<http::WebSocketConnection> connection_;
};

// Says nothing on its own: the test sends through the connection it hands over.
class QuietHandler : public http::WebSocketHandler {
 public:
  explicit QuietHandler(std::shared_ptr<ServerSide> side) : side_(std::move(side)) {}
  void on_open(std::shared_ptr<http::WebSocketConnection> connection) override {
    std::lock_guard lock(side_->mutex);
    side_->quiet = std::move(connection);
    side_->changed.notify_all();
  }
  void on_text(const std::string&) override {}
  void on_close() override {}

 private:
  std::shared_ptr<ServerSide> side_;
};

class ComfySocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.add("GET", "/ws", [this](http::Request& request) {
      return http::Response::websocket_upgrade(std::make_shared<GreetingHandler>(
          side_, "client " + request.query["clientId"] + " auth " + request.header("X-Api-Key")));
    });
    router_.add("GET", "/quiet", [this](http::Request&) {
      return http::Response::websocket_upgrade(std::make_shared<QuietHandler>(side_));
    });
    router_.add("GET", "/plain", [](http::Request&) { return http::Response::json(200, {{"ok", true}}); });
    server_ = std::make_unique<http::Server>(router_, http::ServerLimits{});
    server_->start("127.0.0.1", 0);
    url_ = "http://127.0.0.1:" + std::to_string(server_->port());
  }

  http::Router router_;
  std::shared_ptr<ServerSide> side_ = std::make_shared<ServerSide>();
  std::unique_ptr<http::Server> server_;
  std::string url_;
};

TEST_F(ComfySocketTest, ReadsTextWithTheAuthHeaderThenClosesCleanly) {
  ComfySocket socket(url_, "/ws?clientId=abc", std::make_pair(std::string("X-Api-Key"), std::string("s3cret")),
                     kPatienceMs);
  const SocketFrame greeting = socket.read(kPatienceMs);
  EXPECT_EQ(greeting.kind, SocketFrame::Kind::kText);
  EXPECT_EQ(greeting.data, "client abc auth s3cret");
  socket.close();
  EXPECT_FALSE(socket.is_open());
  EXPECT_TRUE(side_->wait([&] { return side_->closed; }));
}

TEST_F(ComfySocketTest, AUrlWithATrailingSlashAndNoAuthHeader) {
  ComfySocket socket(url_ + "/", "/ws?clientId=x", std::nullopt, kPatienceMs);
  EXPECT_EQ(socket.read(kPatienceMs).data, "client x auth ");
}

TEST_F(ComfySocketTest, ATimeoutLeavesTheReadPendingForBinaryFramesAndTheServerClose) {
  ComfySocket socket(url_, "/quiet", std::nullopt, kPatienceMs);
  ASSERT_TRUE(side_->wait([&] { return side_->quiet != nullptr; }));
  EXPECT_EQ(socket.read(1).kind, SocketFrame::Kind::kTimeout);  // nothing was sent
  std::shared_ptr<http::WebSocketConnection> connection;
  {
    std::lock_guard lock(side_->mutex);
    connection = side_->quiet;
  }
  connection->send_binary(std::string("\x00\x00\x00\x01", 4));
  connection->close();
  const SocketFrame frame = socket.read(kPatienceMs);
  EXPECT_EQ(frame.kind, SocketFrame::Kind::kBinary);
  EXPECT_EQ(frame.data, std::string("\x00\x00\x00\x01", 4));
  EXPECT_EQ(socket.read(kPatienceMs).kind, SocketFrame::Kind::kClosed);
  EXPECT_FALSE(socket.is_open());
}

TEST_F(ComfySocketTest, ARouteWithoutUpgradeOrNoServerIsUnavailable) {
  try {
    ComfySocket socket(url_, "/plain", std::nullopt, kPatienceMs);
    FAIL() << "connected to a route without an upgrade";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(e.what()).find(url_), std::string::npos) << e.what();
  }
  const std::string gone = url_;
  server_->stop();
  EXPECT_THROW(ComfySocket(gone, "/ws", std::nullopt, kPatienceMs), Error);
  EXPECT_THROW(ComfySocket("ftp://host", "/ws", std::nullopt, kPatienceMs), Error);
}

}  // namespace
}  // namespace df::backends

// Tests of WebSocket routes on the HTTP server, driven by a Beast WebSocket client.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>

#include "http/client.h"
#include "http/server.h"

namespace df::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using namespace std::chrono_literals;

// How long a test waits for something that should happen at once before it fails: generous, so
// that a loaded machine does not fail a test, and free when all is well (every wait ends as soon as
// what it waits for happens).
constexpr auto kPatience = 30s;
constexpr int kPatienceMs =
    static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(kPatience).count());

// What the WebSocket routes saw, for the test to wait on.
struct SocketLog {
  std::mutex mutex;
  std::condition_variable changed;
  int opened = 0;
  int closed = 0;
  std::vector<std::string> texts;
  std::vector<std::shared_ptr<WebSocketConnection>> connections;

  bool wait(const std::function<bool()>& done) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, kPatience, done);
  }
  // The connection opened `index`-th, once it is open.
  std::shared_ptr<WebSocketConnection> connection(std::size_t index) {
    if (!wait([&] { return connections.size() > index; })) return nullptr;
    std::lock_guard lock(mutex);
    return connections[index];
  }
};

// Greets with the client id and room, echoes text, closes on "close", throws on "boom".
class EchoHandler : public WebSocketHandler {
 public:
  EchoHandler(std::shared_ptr<SocketLog> log, std::string greeting)
      : log_(std::move(log)), greeting_(std::move(greeting)) {}

  void on_open(std::shared_ptr<WebSocketConnection> connection) override {
    connection_ = connection;
    connection_->send_text(greeting_);
    std::lock_guard lock(log_->mutex);
    ++log_->opened;
    log_->connections.push_back(std::move(connection));
    log_->changed.notify_all();
  }

  void on_text(const std::string& message) override {
    {
      std::lock_guard lock(log_->mutex);
      log_->texts.push_back(message);
      log_->changed.notify_all();
    }
    if (message == "boom") throw std::runtime_error("handler failed on purpose");
    if (message == "close") return connection_->close();
    connection_->send_text("echo: " + message);
  }

  void on_close() override {
    std::lock_guard lock(log_->mutex);
    ++log_->closed;
    log_->changed.notify_all();
  }

 private:
  std::shared_ptr<SocketLog> log_;
  std::string greeting_;
  std::shared_ptr<WebSocketConnection> connection_;
};

// A blocking WebSocket client: each call runs its own io_context until done or out of patience.
class TestSocket {
 public:
  TestSocket(uint16_t port, const std::string& target, const std::string& request_id = "")
      : ws_(io_) {
    ws_.set_option(websocket::stream_base::decorator([request_id](websocket::request_type& req) {
      if (!request_id.empty()) req.set("X-Request-ID", request_id);
    }));
    asio::ip::tcp::endpoint server(asio::ip::make_address("127.0.0.1"), port);
    error_ = run([&](auto done) { beast::get_lowest_layer(ws_).async_connect(server, done); });
    if (error_) return;
    beast::get_lowest_layer(ws_).socket().set_option(asio::ip::tcp::no_delay(true));
    error_ = run([&](auto done) { ws_.async_handshake(handshake_, "127.0.0.1", target, done); });
  }

  bool opened() const { return !error_; }
  beast::error_code error() const { return error_; }
  const websocket::response_type& handshake() const { return handshake_; }
  websocket::close_reason reason() const { return ws_.reason(); }

  // The next message ("" with error() set when the connection ended instead).
  std::string read() {
    buffer_.consume(buffer_.size());
    error_ = run([&](auto done) { ws_.async_read(buffer_, done); });
    return error_ ? "" : beast::buffers_to_string(buffer_.data());
  }
  bool last_was_binary() const { return ws_.got_binary(); }

  void write_text(const std::string& message) { write(message, true); }
  void write_binary(const std::string& bytes) { write(bytes, false); }
  void close() {
    error_ = run([&](auto done) { ws_.async_close(websocket::close_code::normal, done); });
  }

 private:
  void write(const std::string& message, bool text) {
    ws_.text(text);
    error_ = run([&](auto done) { ws_.async_write(asio::buffer(message), done); });
  }

  // Starts an operation with a completion handler and runs until it completes.
  template <class Start>
  beast::error_code run(Start start) {
    std::optional<beast::error_code> result;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    io_.restart();
    auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (!result && io_.run_one_until(deadline) > 0) {
    }
    if (!result) {
      beast::get_lowest_layer(ws_).close();
      while (!result) io_.run_one();
      return asio::error::timed_out;
    }
    return *result;
  }

  asio::io_context io_;
  websocket::stream<beast::tcp_stream> ws_;
  websocket::response_type handshake_;
  beast::flat_buffer buffer_;
  beast::error_code error_;
};

class HttpWebSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.add("GET", "/ws/{room}", [this](Request& request) {
      std::string greeting =
          "hello " + request.query["clientId"] + " in " + request.path_params.at("room");
      return Response::websocket_upgrade(std::make_shared<EchoHandler>(log_, greeting));
    });
  }

  void start(ServerLimits limits = ServerLimits{}) {
    server_ = std::make_unique<Server>(router_, limits, [this](const RequestRecord& record) {
      std::lock_guard lock(records_mutex_);
      records_.push_back(record);
      record_added_.notify_all();
    });
    server_->start("127.0.0.1", 0);
  }

  std::unique_ptr<TestSocket> connect(const std::string& target = "/ws/lobby?clientId=abc",
                                      const std::string& request_id = "") {
    auto socket = std::make_unique<TestSocket>(server_->port(), target, request_id);
    EXPECT_TRUE(socket->opened()) << socket->error().message();
    return socket;
  }

  std::optional<RequestRecord> record_with_id(const std::string& correlation_id) {
    std::unique_lock lock(records_mutex_);
    std::optional<RequestRecord> found;
    record_added_.wait_for(lock, kPatience, [&] {
      for (const RequestRecord& record : records_) {
        if (record.correlation_id == correlation_id) found = record;
      }
      return found.has_value();
    });
    return found;
  }

  Router router_;
  std::shared_ptr<SocketLog> log_ = std::make_shared<SocketLog>();
  std::mutex records_mutex_;
  std::condition_variable record_added_;
  std::vector<RequestRecord> records_;
  std::unique_ptr<Server> server_;  // last: stopped before what its handlers use goes away
};

TEST_F(HttpWebSocketTest, GreetsWithQueryAndPathParamsThenEchoesText) {
  start();
  auto socket = connect("/ws/lobby?clientId=abc%20d", "ws-1");
  EXPECT_EQ(socket->handshake().result_int(), 101);
  EXPECT_EQ(socket->handshake()["X-Request-ID"], "ws-1");
  EXPECT_EQ(socket->read(), "hello abc d in lobby");
  socket->write_text("hi");
  EXPECT_EQ(socket->read(), "echo: hi");
  socket->write_text(std::string(1000, 'x'));
  EXPECT_EQ(socket->read(), "echo: " + std::string(1000, 'x'));
}

TEST_F(HttpWebSocketTest, BinaryMessagesFromTheClientAreIgnored) {
  start();
  auto socket = connect();
  EXPECT_EQ(socket->read(), "hello abc in lobby");
  socket->write_binary("\x01\x02 not for the handler");
  socket->write_text("after");
  EXPECT_EQ(socket->read(), "echo: after");
  ASSERT_TRUE(log_->wait([&] { return log_->texts.size() == 1; }));
  EXPECT_EQ(log_->texts[0], "after");
}

TEST_F(HttpWebSocketTest, MessagesFromAnotherThreadArriveInOrder) {
  ServerLimits limits;
  limits.websocket_max_queued_messages = 2000;  // the sender may run far ahead of the writer
  start(limits);
  auto socket = connect();
  EXPECT_EQ(socket->read(), "hello abc in lobby");
  std::shared_ptr<WebSocketConnection> connection = log_->connection(0);
  ASSERT_TRUE(connection);
  std::thread sender([connection] {
    for (int i = 0; i < 1000; ++i) connection->send_text("m" + std::to_string(i));
    connection->send_binary(std::string("\x00\xff", 2));
  });
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(socket->read(), "m" + std::to_string(i)) << socket->error().message();
    EXPECT_FALSE(socket->last_was_binary());
  }
  EXPECT_EQ(socket->read(), std::string("\x00\xff", 2));
  EXPECT_TRUE(socket->last_was_binary());
  sender.join();
  EXPECT_TRUE(connection->is_open());
}

TEST_F(HttpWebSocketTest, ClientCloseEndsTheConnectionOnceWithStatus101) {
  start();
  auto socket = connect("/ws/lobby", "ws-close");
  EXPECT_EQ(socket->read(), "hello  in lobby");
  socket->close();
  EXPECT_FALSE(socket->error()) << socket->error().message();
  ASSERT_TRUE(log_->wait([&] { return log_->closed == 1; }));
  std::shared_ptr<WebSocketConnection> connection = log_->connection(0);
  EXPECT_FALSE(connection->is_open());
  connection->send_text("after the end");  // does nothing
  std::optional<RequestRecord> record = record_with_id("ws-close");
  ASSERT_TRUE(record);
  EXPECT_EQ(record->status, 101);
  EXPECT_EQ(record->method, "GET");
  EXPECT_EQ(record->route, "/ws/{room}");
  EXPECT_TRUE(record->error.empty()) << record->error;
  std::this_thread::sleep_for(50ms);
  std::lock_guard lock(log_->mutex);
  EXPECT_EQ(log_->closed, 1);
}

TEST_F(HttpWebSocketTest, HandlerCloseSendsQueuedMessagesThenANormalClose) {
  start();
  auto socket = connect();
  EXPECT_EQ(socket->read(), "hello abc in lobby");
  socket->write_text("close");
  EXPECT_EQ(socket->read(), "");
  EXPECT_EQ(socket->error(), websocket::error::closed);
  EXPECT_EQ(socket->reason().code, websocket::close_code::normal);
  EXPECT_TRUE(log_->wait([&] { return log_->closed == 1; }));
}

TEST_F(HttpWebSocketTest, HandlerExceptionClosesWithInternalErrorAndIsRecorded) {
  start();
  auto socket = connect("/ws/lobby", "ws-boom");
  EXPECT_EQ(socket->read(), "hello  in lobby");
  socket->write_text("boom");
  EXPECT_EQ(socket->read(), "");
  EXPECT_EQ(socket->reason().code, websocket::close_code::internal_error);
  std::optional<RequestRecord> record = record_with_id("ws-boom");
  ASSERT_TRUE(record);
  EXPECT_EQ(record->error, "handler failed on purpose");
}

TEST_F(HttpWebSocketTest, PlainGetIs426WithTheErrorEnvelope) {
  start();
  Client client("http://127.0.0.1:" + std::to_string(server_->port()), kPatienceMs);
  ClientResponse response = client.request("GET", "/ws/lobby", "", {{"X-Request-ID", "plain-1"}});
  EXPECT_EQ(response.status, 426);
  EXPECT_EQ(response.header("Upgrade"), "websocket");
  nlohmann::json body = response.json();
  EXPECT_EQ(body["code"], "bad_request");
  EXPECT_EQ(body["correlation_id"], "plain-1");
  EXPECT_TRUE(body["message"].is_string());
  std::optional<RequestRecord> record = record_with_id("plain-1");
  ASSERT_TRUE(record);
  EXPECT_EQ(record->status, 426);
  std::lock_guard lock(log_->mutex);
  EXPECT_EQ(log_->opened, 0);
}

TEST_F(HttpWebSocketTest, UpgradeWithoutAKeyIsBadRequest) {
  start();
  Client client("http://127.0.0.1:" + std::to_string(server_->port()), kPatienceMs);
  ClientResponse response = client.request(
      "GET", "/ws/lobby", "",
      {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}, {"X-Request-ID", "no-key"}});
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(response.header("X-Request-ID"), "no-key");
  std::optional<RequestRecord> record = record_with_id("no-key");
  ASSERT_TRUE(record);
  EXPECT_EQ(record->status, 400);
  std::lock_guard lock(log_->mutex);
  EXPECT_EQ(log_->opened, 0);
  EXPECT_EQ(log_->closed, 0);
}

TEST_F(HttpWebSocketTest, OversizeMessageClosesTheConnection) {
  ServerLimits limits;
  limits.websocket_max_message_bytes = 1024;
  start(limits);
  auto socket = connect();
  EXPECT_EQ(socket->read(), "hello abc in lobby");
  socket->write_text(std::string(1024, 'a'));
  EXPECT_EQ(socket->read(), "echo: " + std::string(1024, 'a'));
  socket->write_text(std::string(2000, 'b'));
  EXPECT_EQ(socket->read(), "");
  EXPECT_EQ(socket->reason().code, websocket::close_code::too_big);
  EXPECT_TRUE(log_->wait([&] { return log_->closed == 1; }));
  std::lock_guard lock(log_->mutex);
  EXPECT_EQ(log_->texts.size(), 1u);
}

TEST_F(HttpWebSocketTest, SlowReaderIsDisconnected) {
  ServerLimits limits;
  limits.websocket_max_queued_messages = 8;
  start(limits);
  auto socket = connect("/ws/lobby", "ws-slow");  // never reads
  std::shared_ptr<WebSocketConnection> connection = log_->connection(0);
  ASSERT_TRUE(connection);
  std::string piece(64 * 1024, 'p');
  int sent = 0;
  auto give_up = std::chrono::steady_clock::now() + kPatience;
  while (connection->is_open() && std::chrono::steady_clock::now() < give_up) {
    connection->send_text(piece);
    if (++sent % 8 == 0) std::this_thread::sleep_for(1ms);
  }
  EXPECT_FALSE(connection->is_open()) << "still open after " << sent << " messages";
  EXPECT_TRUE(log_->wait([&] { return log_->closed == 1; }));
  std::optional<RequestRecord> record = record_with_id("ws-slow");
  ASSERT_TRUE(record);
  EXPECT_NE(record->error.find("did not keep up"), std::string::npos) << record->error;
}

TEST_F(HttpWebSocketTest, StopClosesOpenSocketsWithGoingAway) {
  start();
  auto answering = connect();
  auto silent = connect();
  EXPECT_EQ(answering->read(), "hello abc in lobby");
  ASSERT_TRUE(log_->wait([&] { return log_->opened == 2; }));
  auto stopped = std::async(std::launch::async, [&] { server_->stop(); });
  EXPECT_EQ(answering->read(), "");
  EXPECT_EQ(answering->error(), websocket::error::closed);
  EXPECT_EQ(answering->reason().code, websocket::close_code::going_away);
  ASSERT_EQ(stopped.wait_for(kPatience), std::future_status::ready);  // the silent one is cut off
  std::lock_guard lock(log_->mutex);
  EXPECT_EQ(log_->closed, 2);
}

TEST_F(HttpWebSocketTest, ConnectionKeptAfterTheServerIsGoneDoesNothing) {
  start();
  auto socket = connect();
  std::shared_ptr<WebSocketConnection> connection = log_->connection(0);
  ASSERT_TRUE(connection);
  socket->close();
  ASSERT_TRUE(log_->wait([&] { return log_->closed == 1; }));
  server_.reset();
  EXPECT_FALSE(connection->is_open());
  connection->send_text("too late");
  connection->close();
}

TEST_F(HttpWebSocketTest, FiftyConcurrentSockets) {
  start();
  std::vector<std::unique_ptr<TestSocket>> sockets;
  for (int i = 0; i < 50; ++i) {
    sockets.push_back(connect("/ws/room" + std::to_string(i) + "?clientId=c" + std::to_string(i)));
  }
  for (int i = 0; i < 50; ++i) {
    sockets[i]->write_text("n" + std::to_string(i));
  }
  for (int i = 0; i < 50; ++i) {
    std::string n = std::to_string(i);
    EXPECT_EQ(sockets[i]->read(), "hello c" + n + " in room" + n);
    EXPECT_EQ(sockets[i]->read(), "echo: n" + n);
  }
  for (auto& socket : sockets) socket->close();
  EXPECT_TRUE(log_->wait([&] { return log_->closed == 50; }));
}

}  // namespace
}  // namespace df::http

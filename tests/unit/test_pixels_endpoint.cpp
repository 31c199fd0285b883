// Tests of the DGX-Pixels endpoint's sockets on loopback: one reply to every request whatever it
// holds (garbage, several frames, too many bytes, a failing or slow handler), loud bind failures,
// and updates published from several threads arriving once each.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "core/error.h"
#include "loopback_port.h"
#include "pixels/msgpack_codec.h"
#include "pixels/pixels_messages.h"
#include "pixels/server/request_server.h"
#include "pixels/server/update_publisher.h"
#include "test_support.h"

namespace df::pixels {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

std::string loopback_address() {
  return "tcp://127.0.0.1:" + std::to_string(test::free_loopback_port());
}

// A client's REQ socket that gives up after 5 s, as the original client does.
class Client {
 public:
  explicit Client(const std::string& address) : socket_(context_, zmq::socket_type::req) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::rcvtimeo, 5000);
    socket_.connect(address);
  }

  // Sends the frames as one message and returns the decoded reply.
  json ask(const std::vector<std::string>& frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      socket_.send(zmq::buffer(frames[i]),
                   i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
    zmq::message_t reply;
    if (!socket_.recv(reply)) {
      ADD_FAILURE() << "no reply within 5 s";
      return nullptr;
    }
    EXPECT_FALSE(reply.more()) << "a reply is one frame";
    return decode_msgpack(reply.to_string_view());
  }
  json ask(const ordered_json& message) { return ask(std::vector{encode_msgpack(message)}); }

 private:
  zmq::context_t context_;
  zmq::socket_t socket_;
};

// Answers ping with pong, "explode" by throwing, "wait" by blocking until released.
class EndpointTest : public ::testing::Test {
 protected:
  void start(std::chrono::milliseconds deadline = std::chrono::milliseconds(4000)) {
    server_ = std::make_unique<RequestServer>(
        RequestServerSettings{address_, "--zmq-req-addr", deadline},
        [this](const json& message) -> ordered_json {
          const std::string type = message_type(message);
          if (type == "explode") throw Error(ErrorCode::kUnavailable, "the database is down");
          if (type == "wait") {
            while (!released_) std::this_thread::sleep_for(std::chrono::milliseconds(5));
          }
          return pong();
        });
  }
  void TearDown() override {
    released_ = true;
    server_.reset();
  }

  std::string address_ = loopback_address();
  std::atomic<bool> released_ = false;
  std::unique_ptr<RequestServer> server_;
};

TEST_F(EndpointTest, AnswersARequestWithTheHandlersReply) {
  start();
  Client client(address_);
  EXPECT_EQ(client.ask(ordered_json{{"type", "ping"}}), json({{"type", "pong"}}));
}

TEST_F(EndpointTest, GarbageBytesGetAnErrorReplyAndTheSocketKeepsWorking) {
  start();
  Client client(address_);
  const json reply = client.ask(std::vector<std::string>{std::string("\xc1\xff garbage", 10)});
  EXPECT_EQ(reply["type"], "error");
  EXPECT_FALSE(reply["message"].get<std::string>().empty());
  EXPECT_EQ(client.ask(ordered_json{{"type", "ping"}})["type"], "pong");
}

TEST_F(EndpointTest, AMultipartMessageGetsAnErrorReplyNamingItsFrames) {
  start();
  Client client(address_);
  const std::string ping = encode_msgpack({{"type", "ping"}});
  const json reply = client.ask(std::vector<std::string>{ping, ping});
  EXPECT_EQ(reply["type"], "error");
  EXPECT_NE(reply["message"].get<std::string>().find("2 frames"), std::string::npos)
      << reply.dump();
  EXPECT_EQ(client.ask(ordered_json{{"type", "ping"}})["type"], "pong");
}

TEST_F(EndpointTest, AFrameOverTheLimitGetsAnErrorReplyUnread) {
  start();
  Client client(address_);
  const json reply = client.ask(std::vector<std::string>{std::string(kMaxMessageBytes + 1, 'x')});
  EXPECT_EQ(reply["type"], "error");
  EXPECT_NE(reply["message"].get<std::string>().find("at most 1048576 bytes"), std::string::npos)
      << reply.dump();
  EXPECT_EQ(client.ask(ordered_json{{"type", "ping"}})["type"], "pong");
}

TEST_F(EndpointTest, APeerSendingAFrameOver16MiBIsDisconnectedAndOthersAreStillAnswered) {
  start();
  zmq::context_t context;
  zmq::socket_t flooder(context, zmq::socket_type::req);
  flooder.set(zmq::sockopt::linger, 0);
  flooder.set(zmq::sockopt::rcvtimeo, 1000);
  flooder.connect(address_);
  flooder.send(zmq::buffer(std::string(16 * kMaxMessageBytes + 1, 'x')), zmq::send_flags::none);
  zmq::message_t reply;
  EXPECT_FALSE(flooder.recv(reply)) << "the frame was read: " << reply.to_string();
  Client client(address_);
  EXPECT_EQ(client.ask(ordered_json{{"type", "ping"}})["type"], "pong");
}

TEST_F(EndpointTest, AHandlerThatThrowsGetsAnErrorReplyWithItsMessage) {
  start();
  Client client(address_);
  const json reply = client.ask(ordered_json{{"type", "explode"}});
  EXPECT_EQ(reply, json({{"type", "error"}, {"message", "the database is down"}}));
}

TEST_F(EndpointTest, AHandlerPastTheDeadlineGetsAnErrorReplyAndLaterRequestsAreAnswered) {
  start(std::chrono::milliseconds(50));
  Client client(address_);
  const json reply = client.ask(ordered_json{{"type", "wait"}});
  EXPECT_EQ(reply["type"], "error");
  EXPECT_NE(reply["message"].get<std::string>().find("not handled within 50 ms"),
            std::string::npos)
      << reply.dump();
  released_ = true;
  EXPECT_EQ(client.ask(ordered_json{{"type", "ping"}})["type"], "pong");
}

TEST_F(EndpointTest, ABindFailureNamesTheOptionAndTheAddress) {
  start();
  const Error error = test::error_of([&] {
    RequestServer second(RequestServerSettings{address_, "--zmq-req-addr"},
                         [](const json&) { return pong(); });
  });
  EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  EXPECT_NE(std::string(error.what()).find("--zmq-req-addr"), std::string::npos) << error.what();
  EXPECT_NE(std::string(error.what()).find(address_), std::string::npos) << error.what();
}

TEST(UpdatePublisherTest, UpdatesPublishedFromFourThreadsArriveOnceEach) {
  const std::string address = loopback_address();
  UpdatePublisher publisher(address, "--zmq-pub-addr");
  zmq::context_t context;
  zmq::socket_t subscriber(context, zmq::socket_type::sub);
  subscriber.set(zmq::sockopt::linger, 0);
  subscriber.set(zmq::sockopt::subscribe, "");
  subscriber.set(zmq::sockopt::rcvtimeo, 100);
  subscriber.connect(address);
  // A subscription takes a moment to reach the publisher: probe until one arrives.
  zmq::message_t frame;
  bool subscribed = false;
  for (int attempt = 0; attempt < 100 && !subscribed; ++attempt) {
    publisher.publish({{"type", "pong"}});
    subscribed = subscriber.recv(frame).has_value();
  }
  ASSERT_TRUE(subscribed);
  subscriber.set(zmq::sockopt::rcvtimeo, 5000);

  constexpr int kThreads = 4;
  constexpr int kEach = 100;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&publisher, t] {
      for (int i = 0; i < kEach; ++i) {
        publisher.publish({{"type", "progress"}, {"job_id", std::to_string(t)}, {"step", i}});
      }
    });
  }
  for (auto& thread : threads) thread.join();

  std::map<std::string, int> seen;  // "<job_id>/<step>" -> times
  std::map<std::string, int> last_step;
  while (static_cast<int>(seen.size()) < kThreads * kEach) {
    if (!subscriber.recv(frame)) break;
    const json update = decode_msgpack(frame.to_string_view());
    if (update["type"] != "progress") continue;  // a late probe
    const std::string job = update["job_id"].get<std::string>();
    const int step = update["step"].get<int>();
    ++seen[job + "/" + std::to_string(step)];
    EXPECT_EQ(step, last_step.contains(job) ? last_step[job] + 1 : 0) << "out of order: " << job;
    last_step[job] = step;
  }
  ASSERT_EQ(seen.size(), static_cast<size_t>(kThreads * kEach));
  for (const auto& [key, times] : seen) EXPECT_EQ(times, 1) << key;
  subscriber.set(zmq::sockopt::rcvtimeo, 100);
  EXPECT_FALSE(subscriber.recv(frame).has_value()) << "an update arrived twice";
}

TEST(UpdatePublisherTest, ABindFailureNamesTheOption) {
  const std::string address = loopback_address();
  UpdatePublisher first(address, "--zmq-pub-addr");
  const Error error = test::error_of([&] { UpdatePublisher second(address, "--zmq-pub-addr"); });
  EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  EXPECT_NE(std::string(error.what()).find("--zmq-pub-addr"), std::string::npos) << error.what();
}

}  // namespace
}  // namespace df::pixels

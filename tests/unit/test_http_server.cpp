// Tests of the HTTP server driven by the HTTP client and by raw sockets (limits, errors, streams).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "http/client.h"
#include "http/server.h"

namespace df::http {
namespace {

using namespace std::chrono_literals;

// How long a test waits for something that should happen at once before it fails: generous, so
// that a loaded machine does not fail a test, and free when all is well (every wait ends as soon as
// what it waits for happens).
constexpr auto kPatience = 30s;
constexpr int kPatienceMs =
    static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(kPatience).count());

// Counts the event feeds the server has created and dropped.
struct FeedLog {
  std::mutex mutex;
  std::condition_variable changed;
  int created = 0;
  int dropped = 0;
};

// A StreamSource the test fills: push() hands a chunk to the server and wakes it.
class Feed : public StreamSource {
 public:
  explicit Feed(std::shared_ptr<FeedLog> log) : log_(std::move(log)) {}
  ~Feed() override {
    std::lock_guard lock(log_->mutex);
    ++log_->dropped;
    log_->changed.notify_all();
  }

  void push(std::string chunk, bool last = false) {
    std::function<void()> wake;
    {
      std::lock_guard lock(mutex_);
      chunks_.push_back(std::move(chunk));
      finished_ = last;
      wake = wake_;
    }
    if (wake) wake();
  }

  std::string next_chunk(bool& finished) override {
    std::lock_guard lock(mutex_);
    if (chunks_.empty()) {
      finished = finished_;
      return "";
    }
    std::string chunk = std::move(chunks_.front());
    chunks_.pop_front();
    finished = chunks_.empty() && finished_;
    return chunk;
  }

  void set_wakeup(std::function<void()> wake) override {
    std::lock_guard lock(mutex_);
    wake_ = std::move(wake);
  }

 private:
  std::shared_ptr<FeedLog> log_;
  std::mutex mutex_;
  std::deque<std::string> chunks_;
  bool finished_ = false;
  std::function<void()> wake_;
};

// A StreamSource that never wakes the server: it answers on the third poll, so only the poll
// interval can move it forward.
class ThirdPollSource : public StreamSource {
 public:
  std::string next_chunk(bool& finished) override {
    finished = ++polls_ == 3;
    return finished ? "data: polled\n\n" : "";
  }
  void set_wakeup(std::function<void()>) override {}

 private:
  int polls_ = 0;
};

// A plain TCP connection for what the client would never send.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval timeout{std::chrono::duration_cast<std::chrono::seconds>(kPatience).count(), 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~RawConnection() { ::close(fd_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return connected_; }
  void send(std::string_view bytes) { ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL); }

  // Everything received until `marker` arrived, the server closed, or kPatience passed.
  std::string read_until(std::string_view marker = {}) {
    char piece[4096];
    while (marker.empty() || received_.find(marker) == std::string::npos) {
      ssize_t n = ::recv(fd_, piece, sizeof(piece), 0);
      if (n <= 0) {
        closed_ = n == 0;
        break;
      }
      received_.append(piece, static_cast<std::size_t>(n));
    }
    return received_;
  }
  // True once read_until() saw the server close the connection.
  bool closed_by_server() const { return closed_; }

 private:
  int fd_;
  bool connected_ = false;
  bool closed_ = false;
  std::string received_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.add("GET", "/items/{id}", [](Request& request) {
      return Response::json(200, {{"id", request.path_params.at("id")},
                                  {"q", request.query["q"]},
                                  {"correlation_id", request.correlation_id}});
    });
    router_.add("POST", "/echo", [](Request& request) {
      return Response::json(
          201, {{"got", request.json_body()}, {"content_type", request.header("content-type")}});
    });
    router_.add("GET", "/files/{path...}", [](Request& request) {
      return Response::text(200, request.path_params.at("path"));
    });
    router_.add("GET", "/fail/{kind}", [](Request& request) -> Response {
      if (request.path_params.at("kind") == "conflict") {
        throw Error(ErrorCode::kConflict, "that key was used for another body", {{"key", "k"}});
      }
      throw std::runtime_error("secret internal detail");
    });
    router_.add("GET", "/polled", [](Request&) {
      return Response::event_stream(std::make_shared<ThirdPollSource>());
    });
    router_.add("GET", "/events", [this](Request&) {
      auto feed = std::make_shared<Feed>(feed_log_);
      {
        std::lock_guard lock(feed_log_->mutex);
        feeds_.push_back(feed);
        ++feed_log_->created;
        feed_log_->changed.notify_all();
      }
      return Response::event_stream(feed);
    });
  }

  void start(ServerLimits limits = small_limits()) {
    server_ = std::make_unique<Server>(router_, limits, [this](const RequestRecord& record) {
      std::lock_guard lock(records_mutex_);
      records_.push_back(record);
      record_added_.notify_all();
    });
    server_->start("127.0.0.1", 0);
  }

  static ServerLimits small_limits() {
    ServerLimits limits;
    limits.max_body_bytes = 1024;
    limits.max_header_bytes = 2048;
    limits.request_timeout_ms = 10000;  // the timeout tests set short ones: a loaded machine
    limits.idle_timeout_ms = 10000;     // must not make the other tests time out
    limits.stream_poll_ms = 60000;  // streams move only when woken
    limits.threads = 4;
    return limits;
  }

  Client client() const {
    return Client("http://127.0.0.1:" + std::to_string(server_->port()), kPatienceMs);
  }

  // Waits until the server created `count` feeds; returns them.
  std::vector<std::weak_ptr<Feed>> wait_for_feeds(int count) {
    std::unique_lock lock(feed_log_->mutex);
    EXPECT_TRUE(
        feed_log_->changed.wait_for(lock, kPatience, [&] { return feed_log_->created >= count; }));
    return feeds_;
  }

  bool wait_for_dropped_feeds(int count) {
    std::unique_lock lock(feed_log_->mutex);
    return feed_log_->changed.wait_for(lock, kPatience,
                                       [&] { return feed_log_->dropped >= count; });
  }

  // The first record for `route`, waiting for it to arrive.
  std::optional<RequestRecord> record_for(const std::string& route) {
    std::unique_lock lock(records_mutex_);
    std::optional<RequestRecord> found;
    record_added_.wait_for(lock, kPatience, [&] {
      for (const RequestRecord& record : records_) {
        if (record.route == route) found = record;
      }
      return found.has_value();
    });
    return found;
  }

  Router router_;
  std::shared_ptr<FeedLog> feed_log_ = std::make_shared<FeedLog>();
  std::vector<std::weak_ptr<Feed>> feeds_;
  std::mutex records_mutex_;
  std::condition_variable record_added_;
  std::vector<RequestRecord> records_;
  std::unique_ptr<Server> server_;  // last: stopped before what its handlers use goes away
};

void expect_envelope(const ClientResponse& response, int status, const std::string& code) {
  EXPECT_EQ(response.status, status) << response.body;
  nlohmann::json body = response.json();
  EXPECT_EQ(body["code"], code) << response.body;
  EXPECT_TRUE(body["message"].is_string());
  EXPECT_TRUE(body.contains("details"));
  EXPECT_EQ(body["correlation_id"], response.header("X-Request-ID"));
}

TEST_F(HttpServerTest, RoutesWithParamsAndDecodedQuery) {
  start();
  ClientResponse response = client().get("/items/a%20b?q=x+y%26z&other=1");
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.header("content-type"), "application/json");
  EXPECT_EQ(response.json()["id"], "a b");
  EXPECT_EQ(response.json()["q"], "x y&z");
  EXPECT_EQ(client().get("/files/a/b/c.txt").body, "a/b/c.txt");
  std::optional<RequestRecord> record = record_for("/items/{id}");
  ASSERT_TRUE(record);
  EXPECT_EQ(record->method, "GET");
  EXPECT_EQ(record->status, 200);
  EXPECT_EQ(record->correlation_id, response.header("X-Request-ID"));
}

TEST_F(HttpServerTest, PostJsonReachesTheHandler) {
  start();
  ClientResponse response = client().post_json("/echo", {{"prompt", "a cat"}});
  ASSERT_EQ(response.status, 201) << response.body;
  EXPECT_EQ(response.json()["got"]["prompt"], "a cat");
  EXPECT_EQ(response.json()["content_type"], "application/json");
}

TEST_F(HttpServerTest, InvalidJsonBodyIsBadRequest) {
  start();
  ClientResponse response = client().request("POST", "/echo", "{\"prompt\": ",
                                             {{"Content-Type", "application/json"}});
  expect_envelope(response, 400, "bad_request");
  EXPECT_NE(response.json()["message"].get<std::string>().find("request body is not valid JSON"),
            std::string::npos);
}

TEST_F(HttpServerTest, UnknownPathIsNotFoundAndWrongMethodNotAllowed) {
  start();
  ClientResponse missing = client().get("/nowhere");
  expect_envelope(missing, 404, "not_found");
  ClientResponse wrong = client().request("DELETE", "/items/1");
  expect_envelope(wrong, 405, "method_not_allowed");
  EXPECT_EQ(wrong.header("Allow"), "GET, HEAD");
  std::optional<RequestRecord> record = record_for("/nowhere");
  ASSERT_TRUE(record);
  EXPECT_EQ(record->status, 404);
}

TEST_F(HttpServerTest, HandlerErrorBecomesEnvelopeWithTheClientsCorrelationId) {
  start();
  ClientResponse response =
      client().request("GET", "/fail/conflict", "", {{"X-Request-ID", "client-id.42"}});
  expect_envelope(response, 409, "conflict");
  EXPECT_EQ(response.header("X-Request-ID"), "client-id.42");
  EXPECT_EQ(response.json()["details"]["key"], "k");
}

TEST_F(HttpServerTest, InsaneCorrelationIdIsReplaced) {
  start();
  ClientResponse response = client().request("GET", "/items/1", "", {{"X-Request-ID", "a b"}});
  std::string id = response.header("X-Request-ID");
  EXPECT_EQ(id.size(), 32u);
  EXPECT_EQ(response.json()["correlation_id"], id);
}

TEST_F(HttpServerTest, UnexpectedExceptionIsInternalWithoutItsText) {
  start();
  ClientResponse response = client().get("/fail/crash");
  expect_envelope(response, 500, "internal");
  EXPECT_EQ(response.body.find("secret"), std::string::npos);
  std::optional<RequestRecord> record = record_for("/fail/{kind}");
  ASSERT_TRUE(record);
  EXPECT_EQ(record->error, "secret internal detail");
  EXPECT_EQ(client().get("/items/still-alive").status, 200);
}

TEST_F(HttpServerTest, HeadSendsHeadersOfGetWithoutBody) {
  start();
  RawConnection raw(server_->port());
  raw.send("HEAD /files/abc HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  std::string answer = raw.read_until();
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 200")) << answer;
  EXPECT_NE(answer.find("Content-Length: 3\r\n"), std::string::npos) << answer;
  EXPECT_TRUE(answer.ends_with("\r\n\r\n")) << answer;
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  start();
  RawConnection raw(server_->port());
  raw.send("GET /files/one HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_NE(raw.read_until("one").find("200 OK"), std::string::npos);
  raw.send("GET /files/two HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  std::string answer = raw.read_until();
  EXPECT_TRUE(answer.ends_with("two")) << answer;
  EXPECT_TRUE(raw.closed_by_server());
}

TEST_F(HttpServerTest, BodyOverTheLimitIsRejectedByContentLength) {
  start();
  RawConnection raw(server_->port());
  raw.send(
      "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-ID: big-1\r\nContent-Length: 100000\r\n\r\n");
  std::string answer = raw.read_until();
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 413")) << answer;
  EXPECT_NE(answer.find("\"code\":\"payload_too_large\""), std::string::npos) << answer;
  EXPECT_NE(answer.find("X-Request-ID: big-1"), std::string::npos) << answer;
  EXPECT_TRUE(raw.closed_by_server());
}

TEST_F(HttpServerTest, ChunkedBodyGrowingOverTheLimitIsRejected) {
  start();
  RawConnection raw(server_->port());
  raw.send("POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n");
  raw.send("200\r\n" + std::string(0x200, 'a') + "\r\n");
  raw.send("200\r\n" + std::string(0x200, 'b') + "\r\n");
  raw.send("200\r\n" + std::string(0x200, 'c') + "\r\n");
  std::string answer = raw.read_until();
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 413")) << answer;
  EXPECT_NE(answer.find("payload_too_large"), std::string::npos) << answer;
}

TEST_F(HttpServerTest, HeadersOverTheLimitAre431) {
  start();
  RawConnection raw(server_->port());
  raw.send("GET /items/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + std::string(4000, 'h') + "\r\n\r\n");
  std::string answer = raw.read_until();
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 431")) << answer;
  EXPECT_NE(answer.find("payload_too_large"), std::string::npos) << answer;
  EXPECT_NE(answer.find("X-Request-ID: "), std::string::npos) << answer;
}

TEST_F(HttpServerTest, GarbageIsBadRequestThenClose) {
  start();
  RawConnection raw(server_->port());
  raw.send("THIS IS NOT HTTP\r\n\r\n");
  std::string answer = raw.read_until();
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 400")) << answer;
  EXPECT_NE(answer.find("\"code\":\"bad_request\""), std::string::npos) << answer;
  EXPECT_TRUE(raw.closed_by_server());
}

TEST_F(HttpServerTest, StalledRequestTimesOutWith408WithoutBlockingOthers) {
  ServerLimits limits = small_limits();
  limits.request_timeout_ms = 200;
  start(limits);
  RawConnection stalled(server_->port());
  stalled.send("GET /items/1 HTTP/1.1\r\nHost: 127.0.0.1\r\n");  // the header block never ends
  EXPECT_EQ(client().get("/items/2").status, 200);
  std::string answer = stalled.read_until();
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 408")) << answer;
  EXPECT_NE(answer.find("request_timeout"), std::string::npos) << answer;
  EXPECT_TRUE(stalled.closed_by_server());
}

TEST_F(HttpServerTest, IdleConnectionIsClosed) {
  ServerLimits limits = small_limits();
  limits.idle_timeout_ms = 200;
  start(limits);
  RawConnection idle(server_->port());
  EXPECT_EQ(idle.read_until(), "");
  EXPECT_TRUE(idle.closed_by_server());
}

TEST_F(HttpServerTest, FiftyConcurrentRequests) {
  start();
  std::vector<std::future<ClientResponse>> answers;
  for (int i = 0; i < 50; ++i) {
    answers.push_back(std::async(
        std::launch::async, [this, i] { return client().get("/items/" + std::to_string(i)); }));
  }
  for (int i = 0; i < 50; ++i) {
    ClientResponse response = answers[i].get();
    ASSERT_EQ(response.status, 200);
    EXPECT_EQ(response.json()["id"], std::to_string(i));
  }
}

TEST_F(HttpServerTest, StreamDeliversEventsAsTheyAreWoken) {
  start();
  std::mutex mutex;
  std::condition_variable received;
  std::vector<ServerSentEvent> events;
  auto streamed = std::async(std::launch::async, [&] {
    return client().stream_events("/events", {{"X-Request-ID", "stream-1"}},
                                  [&](const ServerSentEvent& event) {
                                    std::lock_guard lock(mutex);
                                    events.push_back(event);
                                    received.notify_all();
                                    return true;
                                  });
  });
  std::shared_ptr<Feed> feed = wait_for_feeds(1).at(0).lock();
  ASSERT_TRUE(feed);
  auto wait_for_events = [&](std::size_t count) {
    std::unique_lock lock(mutex);
    return received.wait_for(lock, kPatience, [&] { return events.size() >= count; });
  };
  feed->push(": connected\n\nid: 1\nevent: progress\ndata: {\"step\":1}\n\n");
  ASSERT_TRUE(wait_for_events(1));
  feed->push("id: 2\nevent: progress\ndata: line one\ndata: line two\n\n");
  ASSERT_TRUE(wait_for_events(2));
  feed->push("id: 3\nevent: done\ndata: {}\n\n", /*last=*/true);
  feed.reset();
  ASSERT_EQ(streamed.wait_for(kPatience), std::future_status::ready);
  EXPECT_EQ(streamed.get(), 200);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].id, "1");
  EXPECT_EQ(events[0].event, "progress");
  EXPECT_EQ(events[0].data, "{\"step\":1}");
  EXPECT_EQ(events[1].data, "line one\nline two");
  EXPECT_EQ(events[2].event, "done");
  EXPECT_TRUE(wait_for_dropped_feeds(1));
  std::optional<RequestRecord> record = record_for("/events");
  ASSERT_TRUE(record);
  EXPECT_EQ(record->status, 200);
  EXPECT_EQ(record->correlation_id, "stream-1");
}

TEST_F(HttpServerTest, StreamHeadersAreChunkedEventStream) {
  start();
  RawConnection raw(server_->port());
  raw.send("GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  std::string head = raw.read_until("\r\n\r\n");
  EXPECT_TRUE(head.starts_with("HTTP/1.1 200")) << head;
  EXPECT_NE(head.find("Content-Type: text/event-stream\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("Cache-Control: no-cache\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("X-Accel-Buffering: no\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("X-Request-ID: "), std::string::npos) << head;
  wait_for_feeds(1).at(0).lock()->push("data: x\n\n", /*last=*/true);
  std::string all = raw.read_until();
  EXPECT_TRUE(all.ends_with("9\r\ndata: x\n\n\r\n0\r\n\r\n")) << all;
}

TEST_F(HttpServerTest, ClientLeavingMidStreamDropsTheSourceAndHarmsNobody) {
  start();
  std::shared_ptr<Feed> feed;
  {
    RawConnection raw(server_->port());
    raw.send("GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    raw.read_until("\r\n\r\n");
    feed = wait_for_feeds(1).at(0).lock();
    feed->push("data: first\n\n");
    raw.read_until("first");
  }
  ASSERT_TRUE(record_for("/events"));  // the stream ended
  EXPECT_EQ(feed.use_count(), 1);      // and the server let go of its source
  feed->push("data: too late\n\n");    // waking a stream that is gone does nothing
  EXPECT_EQ(client().get("/items/after").status, 200);
  feed.reset();
  EXPECT_TRUE(wait_for_dropped_feeds(1));
}

TEST_F(HttpServerTest, StreamIsPolledWhenNobodyWakesIt) {
  ServerLimits limits = small_limits();
  limits.stream_poll_ms = 10;
  start(limits);
  std::vector<ServerSentEvent> events;
  int status = client().stream_events("/polled", {}, [&](const ServerSentEvent& event) {
    events.push_back(event);
    return true;
  });
  EXPECT_EQ(status, 200);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "polled");
}

TEST_F(HttpServerTest, ExpectContinueGetsAnInterimAnswerBeforeTheBody) {
  start();
  RawConnection raw(server_->port());
  raw.send(
      "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Content-Length: 7\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(raw.read_until("\r\n\r\n").starts_with("HTTP/1.1 100 Continue\r\n"));
  raw.send("[1,2,3]");
  std::string answer = raw.read_until();
  EXPECT_NE(answer.find("HTTP/1.1 201"), std::string::npos) << answer;
  EXPECT_NE(answer.find("\"got\":[1,2,3]"), std::string::npos) << answer;
}

TEST_F(HttpServerTest, TwoHundredConcurrentStreams) {
  start();
  constexpr int kStreams = 200;
  std::vector<std::unique_ptr<RawConnection>> connections;
  for (int i = 0; i < kStreams; ++i) {
    connections.push_back(std::make_unique<RawConnection>(server_->port()));
    ASSERT_TRUE(connections.back()->connected());
    connections.back()->send("GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  }
  std::vector<std::weak_ptr<Feed>> feeds = wait_for_feeds(kStreams);
  ASSERT_EQ(feeds.size(), static_cast<std::size_t>(kStreams));
  for (auto& weak : feeds) weak.lock()->push("data: hello\n\n", /*last=*/true);
  for (auto& connection : connections) {
    std::string all = connection->read_until();
    EXPECT_NE(all.find("data: hello"), std::string::npos);
    EXPECT_TRUE(connection->closed_by_server());
  }
}

TEST_F(HttpServerTest, StopEndsOpenStreams) {
  start();
  auto streamed = std::async(std::launch::async, [&] {
    return client().stream_events("/events", {}, [](const ServerSentEvent&) { return true; });
  });
  wait_for_feeds(1);
  server_->stop();
  ASSERT_EQ(streamed.wait_for(kPatience), std::future_status::ready);
  try {
    streamed.get();
    FAIL() << "a stream cut short by the server must not look finished";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(error.what()).find("broke off"), std::string::npos) << error.what();
  }
  EXPECT_TRUE(wait_for_dropped_feeds(1));
  server_->stop();  // idempotent
}

TEST_F(HttpServerTest, ListeningOnABusyPortIsUnavailable) {
  start();
  Server second(router_, small_limits());
  try {
    second.start("127.0.0.1", server_->port());
    FAIL() << "expected the port to be busy";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(error.what()).find("127.0.0.1:" + std::to_string(server_->port())),
              std::string::npos);
  }
}

}  // namespace
}  // namespace df::http

// Tests of the S3 client's retries (server errors, stalled and refused connections), request
// signing headers and presigned URLs, against a scripted loopback HTTP server.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "blob/s3_client.h"
#include "s3_server.h"
#include "test_support.h"

namespace df::blob {
namespace {

using test::error_of;

// Answers each connection with the next scripted status (0: accept, read, never answer), closing
// it afterwards; records each request's head.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::vector<int> statuses) : statuses_(statuses.begin(), statuses.end()) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    socklen_t length = sizeof address;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    ::listen(listener_, 16);
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedServer() {
    stopping_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    thread_.join();
    for (const int fd : held_) ::close(fd);
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  void serve() {
    while (!stopping_) {
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      const std::string head = read_head(fd);
      int status = 200;
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(head);
        if (!statuses_.empty()) {
          status = statuses_.front();
          statuses_.pop_front();
        }
      }
      if (status == 0) {
        held_.push_back(fd);
        continue;
      }
      const std::string body =
          status == 200 ? "" : "<Error><Code>SlowDown</Code><Message>busy</Message></Error>";
      const std::string response = "HTTP/1.1 " + std::to_string(status) +
                                   " Scripted\r\nContent-Length: " + std::to_string(body.size()) +
                                   "\r\nETag: \"e\"\r\nConnection: close\r\n\r\n" + body;
      ::send(fd, response.data(), response.size(), MSG_NOSIGNAL);
      ::close(fd);
    }
  }

  // The request line and headers, and the body (by Content-Length) read and dropped.
  static std::string read_head(int fd) {
    std::string data;
    char buffer[4096];
    size_t end = std::string::npos;
    while ((end = data.find("\r\n\r\n")) == std::string::npos) {
      const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
      if (got <= 0) return data;
      data.append(buffer, static_cast<size_t>(got));
    }
    const std::string head = data.substr(0, end);
    size_t body_length = 0;
    for (const std::string name : {"Content-Length: ", "content-length: "}) {
      if (const size_t at = head.find(name); at != std::string::npos) {
        body_length = std::stoul(head.substr(at + name.size()));
      }
    }
    size_t have = data.size() - end - 4;
    while (have < body_length) {
      const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
      if (got <= 0) break;
      have += static_cast<size_t>(got);
    }
    return head;
  }

  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::deque<int> statuses_;
  std::vector<std::string> requests_;
  std::vector<int> held_;
};

// `stall_seconds`: how long a request may go without progress. The stall tests make it short (the
// server never answers); elsewhere it is generous, so that a loaded machine, where the server's
// thread may not run for a while, does not turn an answer into a stall and a retry.
S3Settings settings_for(const std::string& endpoint, int stall_seconds = 30) {
  S3Settings settings;
  settings.bucket = "artifacts";
  settings.endpoint = endpoint;
  settings.credentials = {"AKIDTEST", "a-very-secret-key"};
  settings.first_retry_delay_ms = 10;
  settings.stall_timeout_seconds = stall_seconds;
  settings.max_attempts = 3;
  return settings;
}

TEST(S3Client, RetriesServerErrorsUntilOneSucceeds) {
  ScriptedServer server({503, 500, 200});
  const S3Response response =
      S3Client(settings_for(server.endpoint())).send({"PUT", "a/b c.png", {}, {}, "pixels"});
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.headers.at("etag"), "\"e\"");
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);
  for (const std::string& head : requests) {
    EXPECT_EQ(head.rfind("PUT /artifacts/a/b%20c.png HTTP/1.1\r\n", 0), 0u) << head;
    EXPECT_NE(head.find("Authorization: AWS4-HMAC-SHA256 Credential=AKIDTEST/"), std::string::npos)
        << head;
    EXPECT_NE(head.find("x-amz-content-sha256: "), std::string::npos) << head;
    EXPECT_EQ(head.find("a-very-secret-key"), std::string::npos) << head;
  }
}

TEST(S3Client, GivesUpOnServerErrorsAfterTheLastAttempt) {
  ScriptedServer server({500, 500, 500, 200});
  const S3Response response =
      S3Client(settings_for(server.endpoint())).send({"GET", "k", {}, {}, ""});
  EXPECT_EQ(response.status, 500);
  EXPECT_EQ(xml_element_text(response.body, "Code"), "SlowDown");
  EXPECT_EQ(server.requests().size(), 3u);
  const Error error = s3_error(response, settings_for(server.endpoint()), "read 'k'");
  EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  EXPECT_NE(std::string(error.what()).find("bucket 'artifacts'"), std::string::npos)
      << error.what();
  EXPECT_NE(std::string(error.what()).find("HTTP 500 SlowDown: busy"), std::string::npos)
      << error.what();
}

TEST(S3Client, ClientErrorsAreNotRetried) {
  ScriptedServer server({403, 200});
  EXPECT_EQ(S3Client(settings_for(server.endpoint())).send({"HEAD", "k", {}, {}, ""}).status, 403);
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(S3Client, RetriesAStalledRequestThenReportsTheTimeout) {
  ScriptedServer server({0, 0, 0});
  const Error error = error_of([&] {
    S3Client(settings_for(server.endpoint(), 1)).send({"GET", "k", {}, {}, ""});
  });
  EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  EXPECT_NE(std::string(error.what()).find("after 3 attempts"), std::string::npos) << error.what();
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(S3Client, StalledRequestThatRecoversSucceeds) {
  ScriptedServer server({0, 200});
  EXPECT_EQ(S3Client(settings_for(server.endpoint(), 1)).send({"GET", "k", {}, {}, ""}).status,
            200);
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST(S3Client, UnreachableServerIsUnavailableNamingTheEndpoint) {
  const std::string endpoint = "http://127.0.0.1:" + std::to_string(test::free_loopback_port());
  const Error error = error_of([&] {
    S3Client(settings_for(endpoint)).send({"GET", "k", {}, {}, ""});
  });
  EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  EXPECT_NE(std::string(error.what()).find(endpoint), std::string::npos) << error.what();
  EXPECT_EQ(std::string(error.what()).find("a-very-secret-key"), std::string::npos);
}

TEST(S3Client, PresignedUrlIsOnTheEndpointWithTheTtl) {
  S3Client client(settings_for("http://127.0.0.1:9000"));
  const std::string url = client.presigned_get_url("dir/a b.png", 600);
  EXPECT_EQ(
      url.rfind("http://127.0.0.1:9000/artifacts/dir/a%20b.png?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                "&X-Amz-Credential=AKIDTEST%2F",
                0),
      0u)
      << url;
  EXPECT_NE(url.find("&X-Amz-Expires=600&X-Amz-SignedHeaders=host&X-Amz-Signature="),
            std::string::npos)
      << url;
  EXPECT_NE(client.presigned_get_url("k", 30 * 24 * 3600).find("X-Amz-Expires=604800"),
            std::string::npos)
      << "S3 takes at most 7 days";
}

TEST(S3Client, PresignedUrlIsOnThePublicEndpointWhenThereIsOne) {
  S3Settings settings = settings_for("http://minio:9000");
  settings.public_endpoint = "http://127.0.0.1:19000";
  S3Client client(settings);
  const std::string url = client.presigned_get_url("k.png", 60);
  EXPECT_EQ(url.rfind("http://127.0.0.1:19000/artifacts/k.png?X-Amz-Algorithm=", 0), 0u) << url;
}

TEST(S3Client, VirtualHostedBucketIsInTheHost) {
  S3Settings settings = settings_for("https://artifacts.s3.us-east-1.amazonaws.com");
  settings.path_style = false;
  EXPECT_EQ(S3Client(settings)
                .presigned_get_url("k.png", 60)
                .rfind("https://artifacts.s3.us-east-1.amazonaws.com/k.png?", 0),
            0u);
}

}  // namespace
}  // namespace df::blob

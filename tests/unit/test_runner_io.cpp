// Unit tests for the runner protocol framing, the event writer and the request-reading thread.
#include <gtest/gtest.h>

#include <chrono>
#include <ext/stdio_filebuf.h>
#include <fcntl.h>
#include <functional>
#include <istream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "core/error.h"
#include "runner/protocol.h"
#include "runner/runner_io.h"
#include "test_graph_support.h"

namespace df::runner {
namespace {

using nlohmann::json;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Polls `condition` for up to 30 seconds: generous for a loaded machine, and the wait ends as soon
// as the condition holds.
bool eventually(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TEST(ParseRequestLine, ReturnsTheObject) {
  const json request = parse_request_line(R"({"type":"run","id":"r1","prompt":{}})");
  EXPECT_EQ(request["type"], "run");
  EXPECT_EQ(request["id"], "r1");
}

TEST(ParseRequestLine, MalformedLinesAreProtocolErrors) {
  for (const char* line : {"", "not json", R"({"type":"run")", "[1,2]", "\"run\"", "{}",
                           R"({"type":5})", R"({"type":null})", R"({"id":"r1"})"}) {
    graph_test::expect_error([&] { parse_request_line(line); }, ErrorCode::kProtocol);
  }
}

TEST(EncodeEvent, OneLineEvenWithNewlinesInStrings) {
  const json event = {{"type", "log"}, {"message", "first\nsecond\r\nthird"}};
  const std::string line = encode_event(event);
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  EXPECT_EQ(json::parse(line), event);
}

TEST(EncodeEvent, InvalidUtf8IsReplacedNotThrown) {
  const json event = {{"type", "log"}, {"message", std::string("bad \xff byte")}};
  std::string line;
  ASSERT_NO_THROW(line = encode_event(event));
  EXPECT_EQ(json::parse(line)["message"], "bad \xEF\xBF\xBD byte");
}

TEST(EventWriter, WritesOneLinePerEvent) {
  std::ostringstream out;
  EventWriter writer(out);
  const std::vector<json> events = {{{"type", "progress"}, {"step", 1}},
                                    {{"type", "log"}, {"message", "line one\nline two"}},
                                    {{"type", "done"}, {"id", "r1"}}};
  for (const json& event : events) writer.emit(event);
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), events.size()) << out.str();
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(json::parse(lines[i]), events[i]);
}

TEST(EventWriter, WritesTypedEventsInTheirWireForm) {
  std::ostringstream out;
  EventWriter writer(out);
  writer.emit(ProgressEvent{"r1", 0, "3", 2, 4, 0.5});
  writer.emit(Event{ByeEvent{}});
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 2u) << out.str();
  EXPECT_EQ(json::parse(lines[0]), to_json(Event{ProgressEvent{"r1", 0, "3", 2, 4, 0.5}}));
  EXPECT_EQ(json::parse(lines[1]), json({{"type", "bye"}}));
}

TEST(EventWriter, ConcurrentEmitsDoNotInterleave) {
  std::ostringstream out;
  EventWriter writer(out);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&writer, t] {
      for (int i = 0; i < 50; ++i) {
        writer.emit({{"type", "log"}, {"message", std::string(200, static_cast<char>('a' + t))}});
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 200u);
  for (const auto& line : lines) {
    EXPECT_EQ(json::parse(line)["message"].get<std::string>().size(), 200u);
  }
}

// All input at once: requests come out in order, cancels are not queued, bad lines are answered.
TEST(RequestReader, QueuesRequestsInOrderAndAnswersMalformedLines) {
  std::istringstream in(
      "{\"type\":\"run\",\"id\":\"r1\"}\n"
      "\n"
      "   \t\r\n"
      "this is not json\n"
      "{\"type\":\"cancel\",\"id\":\"r1\"}\n"
      "{\"type\":\"cancel\"}\n"
      "{\"type\":\"describe\"}\n"
      "[\"run\"]\n"
      "{\"type\":\"run\",\"id\":\"r2\"}\n"
      "{\"type\":\"shutdown\"}\n");
  std::ostringstream out;
  EventWriter writer(out);
  RequestReader reader(in, writer);
  std::vector<json> requests;
  while (auto request = reader.next()) requests.push_back(*request);
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[0], json({{"type", "run"}, {"id", "r1"}}));
  EXPECT_EQ(requests[1], json({{"type", "describe"}}));
  EXPECT_EQ(requests[2], json({{"type", "run"}, {"id", "r2"}}));
  EXPECT_EQ(requests[3], json({{"type", "shutdown"}}));
  EXPECT_TRUE(reader.shutdown_requested());

  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 3u) << out.str();
  for (const auto& line : lines) {
    const json event = json::parse(line);
    EXPECT_EQ(event["type"], "error");
    EXPECT_EQ(event["code"], "protocol");
    EXPECT_FALSE(event["message"].get<std::string>().empty());
    EXPECT_TRUE(event["details"].is_object());
  }
  EXPECT_NE(lines[1].find("malformed 'cancel' message: 'id' is required"), std::string::npos) << lines[1];
}

TEST(RequestReader, EndOfInputEndsTheQueueAndCancelsEverything) {
  std::istringstream in("");
  std::ostringstream out;
  EventWriter writer(out);
  RequestReader reader(in, writer);
  EXPECT_FALSE(reader.next().has_value());
  EXPECT_FALSE(reader.next().has_value());
  EXPECT_TRUE(reader.shutdown_requested());
  EXPECT_TRUE(reader.cancel_requested("r1"));
  EXPECT_TRUE(out.str().empty());
}

// A pipe whose read end is an std::istream, so the test decides when each line arrives.
class PipeInput {
 public:
  PipeInput() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    write_fd_ = fds[1];
    buffer_ = std::make_unique<__gnu_cxx::stdio_filebuf<char>>(fds[0], std::ios::in);
    stream_ = std::make_unique<std::istream>(buffer_.get());
  }
  ~PipeInput() { close(); }

  std::istream& stream() { return *stream_; }
  void send(const std::string& line) {
    const std::string data = line + "\n";
    ASSERT_EQ(::write(write_fd_, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  }
  void close() {
    if (write_fd_ >= 0) ::close(write_fd_);
    write_fd_ = -1;
  }

 private:
  int write_fd_ = -1;
  std::unique_ptr<__gnu_cxx::stdio_filebuf<char>> buffer_;
  std::unique_ptr<std::istream> stream_;
};

TEST(RequestReader, CancelIsSeenWhileARunIsExecuting) {
  PipeInput input;
  std::ostringstream out;
  EventWriter writer(out);
  RequestReader reader(input.stream(), writer);

  input.send(R"({"type":"run","id":"r1"})");
  auto run = reader.next();
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ((*run)["id"], "r1");
  reader.begin_run("r1");
  EXPECT_FALSE(reader.cancel_requested("r1"));

  input.send(R"({"type":"cancel","id":"r1"})");
  EXPECT_TRUE(eventually([&] { return reader.cancel_requested("r1"); }));
  EXPECT_FALSE(reader.cancel_requested("r2"));
  EXPECT_FALSE(reader.cancel_requested(""));
  EXPECT_FALSE(reader.shutdown_requested());

  // The cancel was not queued: the next request is the next run, which starts uncanceled.
  input.send(R"({"type":"run","id":"r2"})");
  run = reader.next();
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ((*run)["id"], "r2");
  reader.begin_run("r2");
  EXPECT_FALSE(reader.cancel_requested("r1"));
  EXPECT_FALSE(reader.cancel_requested("r2"));

  input.send(R"({"type":"shutdown"})");
  EXPECT_TRUE(eventually([&] { return reader.shutdown_requested(); }));
  EXPECT_TRUE(reader.cancel_requested("r2"));
  run = reader.next();
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ((*run)["type"], "shutdown");

  input.close();
  EXPECT_FALSE(reader.next().has_value());
  EXPECT_TRUE(out.str().empty()) << out.str();
}

// A cancel that arrives before its run starts still applies to that run.
TEST(RequestReader, CancelBeforeTheRunStartsIsKept) {
  PipeInput input;
  std::ostringstream out;
  EventWriter writer(out);
  RequestReader reader(input.stream(), writer);

  input.send(R"({"type":"run","id":"r3"})");
  input.send(R"({"type":"cancel","id":"r3"})");
  EXPECT_TRUE(eventually([&] { return reader.cancel_requested("r3"); }));
  auto run = reader.next();
  ASSERT_TRUE(run.has_value());
  reader.begin_run((*run)["id"].get<std::string>());
  EXPECT_TRUE(reader.cancel_requested("r3"));

  input.close();
  EXPECT_FALSE(reader.next().has_value());
}

TEST(RequestReader, MalformedLineIsAnsweredBeforeInputEnds) {
  PipeInput input;
  std::ostringstream out;
  EventWriter writer(out);
  RequestReader reader(input.stream(), writer);

  input.send("{broken");
  input.send(R"({"type":"ping"})");
  auto request = reader.next();
  ASSERT_TRUE(request.has_value());
  EXPECT_EQ((*request)["type"], "ping");
  // The error event was written before the following request was queued.
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(json::parse(lines[0])["code"], "protocol");

  input.close();
  EXPECT_FALSE(reader.next().has_value());
}

}  // namespace
}  // namespace df::runner

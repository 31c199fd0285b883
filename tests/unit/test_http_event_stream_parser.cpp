// Unit tests for the incremental text/event-stream parser.
#include <gtest/gtest.h>

#include <vector>

#include "http/event_stream_parser.h"

namespace df::http {
namespace {

// Feeds `pieces` one after the other and returns every event they complete.
std::vector<ServerSentEvent> parse_pieces(const std::vector<std::string>& pieces) {
  EventStreamParser parser;
  std::vector<ServerSentEvent> events;
  for (const std::string& piece : pieces) {
    parser.feed(piece, [&](const ServerSentEvent& event) {
      events.push_back(event);
      return true;
    });
  }
  return events;
}

std::vector<ServerSentEvent> parse_bytewise(const std::string& text) {
  std::vector<std::string> pieces;
  for (char c : text) pieces.emplace_back(1, c);
  return parse_pieces(pieces);
}

TEST(HttpEventStreamParser, ParsesFieldsAndJoinsDataLines) {
  std::string text =
      ": heartbeat\n"
      "id: 7\n"
      "event: progress\n"
      "data: {\"step\":1}\n"
      "data:second line\n"
      "\n"
      "data: plain\n"
      "\n";
  for (const auto& events : {parse_pieces({text}), parse_bytewise(text)}) {
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].id, "7");
    EXPECT_EQ(events[0].event, "progress");
    EXPECT_EQ(events[0].data, "{\"step\":1}\nsecond line");
    EXPECT_EQ(events[1].id, "7");  // the last event id persists
    EXPECT_EQ(events[1].event, "message");
    EXPECT_EQ(events[1].data, "plain");
  }
}

TEST(HttpEventStreamParser, AcceptsEveryLineEndingAlsoSplitAcrossPieces) {
  auto events = parse_pieces({"data: a\r", "\n\r", "\ndata: b\r\r", "data: c\n", "\n"});
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].data, "a");
  EXPECT_EQ(events[1].data, "b");  // "\r\r" ended the line and then the event
  EXPECT_EQ(events[2].data, "c");
}

TEST(HttpEventStreamParser, EventsWithoutDataAreNotDispatched) {
  auto events = parse_pieces({"event: ping\n\nid: 3\n\ndata\n\n"});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event, "message");  // the event type was reset by the empty event
  EXPECT_EQ(events[0].id, "3");
  EXPECT_EQ(events[0].data, "");  // a "data" field without colon adds an empty line
}

TEST(HttpEventStreamParser, UnfinishedEventIsNotDispatched) {
  EXPECT_TRUE(parse_pieces({"data: half\n"}).empty());
}

TEST(HttpEventStreamParser, SkipsByteOrderMarkEvenWhenSplit) {
  auto events = parse_pieces({"\xEF", "\xBB",
                              "\xBF"
                              "data: x\n\n"});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "x");
  events =
      parse_pieces({"\xEF"
                    "data: y\n\n"});  // not a byte order mark: kept
  ASSERT_EQ(events.size(), 0u);       // its field name is "\xEF" "data"
}

TEST(HttpEventStreamParser, StopsWhenTheCallbackSaysSo) {
  EventStreamParser parser;
  int calls = 0;
  bool more = parser.feed("data: 1\n\ndata: 2\n\n", [&](const ServerSentEvent&) {
    ++calls;
    return false;
  });
  EXPECT_FALSE(more);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace df::http

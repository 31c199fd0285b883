// Tests of the service log: terminal echo, the bounded ring, listeners and clean UTF-8.
#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "telemetry/service_log.h"

namespace df::telemetry {
namespace {

std::vector<std::string> messages(const ServiceLog& log) {
  std::vector<std::string> result;
  for (const LogEntry& entry : log.entries()) result.push_back(entry.message);
  return result;
}

TEST(ServiceLog, EchoesInfoAndErrorsToTheirStreamsWithNewlines) {
  std::ostringstream out, err;
  ServiceLog log(10, out, err);
  log.info("serving http://127.0.0.1:8188");
  log.error("worker w1: database is locked\n");
  EXPECT_EQ(out.str(), "serving http://127.0.0.1:8188\n");
  EXPECT_EQ(err.str(), "worker w1: database is locked\n");
  EXPECT_EQ(messages(log), (std::vector<std::string>{"serving http://127.0.0.1:8188\n",
                                                     "worker w1: database is locked\n"}));
}

TEST(ServiceLog, StampsEntriesWithLocalIsoTimeInMicroseconds) {
  std::ostringstream out, err;
  ServiceLog log(10, out, err);
  log.info("x");
  const std::regex iso(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6})");
  EXPECT_TRUE(std::regex_match(log.entries().at(0).time, iso)) << log.entries().at(0).time;
}

TEST(ServiceLog, KeepsOnlyTheNewestLines) {
  std::ostringstream out, err;
  ServiceLog log(3, out, err);
  for (int i = 1; i <= 5; ++i) log.info("line " + std::to_string(i));
  EXPECT_EQ(messages(log), (std::vector<std::string>{"line 3\n", "line 4\n", "line 5\n"}));
  EXPECT_EQ(out.str(), "line 1\nline 2\nline 3\nline 4\nline 5\n");
}

TEST(ServiceLog, ListenersGetNewLinesUntilTheyLeave) {
  std::ostringstream out, err;
  ServiceLog log(10, out, err);
  log.info("before");
  std::vector<std::string> heard;
  const uint64_t token = log.listen([&](const LogEntry& entry) { heard.push_back(entry.message); });
  log.info("one");
  log.error("two");
  log.unlisten(token);
  log.info("after");
  EXPECT_EQ(heard, (std::vector<std::string>{"one\n", "two\n"}));
}

TEST(ServiceLog, InvalidUtf8BecomesReplacementCharacters) {
  std::ostringstream out, err;
  ServiceLog log(10, out, err);
  log.info("caf\xC3\xA9 \xFF\xFE end");
  EXPECT_EQ(log.entries().at(0).message, "caf\xC3\xA9 \xEF\xBF\xBD\xEF\xBF\xBD end\n");
}

}  // namespace
}  // namespace df::telemetry

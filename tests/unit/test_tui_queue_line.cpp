// Unit tests for the queue view's lines: bars, durations, columns in 80 cells.
#include <gtest/gtest.h>

#include "tui/queue_line.h"

namespace df::tui {
namespace {

// Cells of a UTF-8 line (a code point a cell).
int cells(const std::string& text) {
  int count = 0;
  for (const char c : text) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return count;
}

JobView job_of(const std::string& id, const std::string& model, int count) {
  JobView job;
  job.id = id;
  job.model = model;
  job.count = count;
  return job;
}

TEST(TuiQueueLine, FitCutsAndPadsByCodePoint) {
  EXPECT_EQ(fit("abc", 5), "abc  ");
  EXPECT_EQ(fit("abcdef", 3), "abc");
  EXPECT_EQ(fit("éèêë", 2), "éè");
  EXPECT_EQ(fit("", 0), "");
}

TEST(TuiQueueLine, AsciiBars) {
  EXPECT_EQ(progress_bar(0, 10, false), "..........");
  EXPECT_EQ(progress_bar(50, 10, false), "#####.....");
  EXPECT_EQ(progress_bar(100, 4, false), "####");
  EXPECT_EQ(progress_bar(250, 4, false), "####");
  EXPECT_EQ(progress_bar(-5, 4, false), "....");
}

TEST(TuiQueueLine, Utf8BarsUseEighths) {
  EXPECT_EQ(progress_bar(50, 4, true), "██░░");
  EXPECT_EQ(progress_bar(12.5 + 25, 4, true), "█▌░░");
  EXPECT_EQ(cells(progress_bar(33, 7, true)), 7);
}

TEST(TuiQueueLine, Durations) {
  EXPECT_EQ(duration_text(std::nullopt), "-");
  EXPECT_EQ(duration_text(-1.0), "-");
  EXPECT_EQ(duration_text(41.6), "42s");
  EXPECT_EQ(duration_text(185), "3m05s");
  EXPECT_EQ(duration_text(7440), "2h04m");
}

TEST(TuiQueueLine, JobLineHasEveryColumnIn79Cells) {
  JobView job = job_of("0190abcd-1234-7000-8000-000000000000", "tiny", 4);
  job.status = JobStatus::kRunning;
  job.stage = "sampling";
  job.percent = 37.5;
  job.eta_s = 12;
  const std::string line = job_line(job, 79, false);
  EXPECT_EQ(cells(line), 79);
  EXPECT_EQ(line.substr(0, 9), "0190abcd ");
  for (const char* part : {"tiny", "sampling", "2/4", "38%", "12s", "running", "###", "....."}) {
    EXPECT_NE(line.find(part), std::string::npos) << part << " in " << line;
  }
  EXPECT_EQ(cells(job_header(79)), 79);
  EXPECT_NE(job_header(79).find("STATUS"), std::string::npos);
}

TEST(TuiQueueLine, FinishedJobsShowNoStageOrEta) {
  JobView job = job_of("abcdef012345", "", 0);
  job.status = JobStatus::kCanceled;
  job.stage = "sampling";
  job.eta_s = 3;
  const std::string line = job_line(job, 79, true);
  EXPECT_EQ(line.find("sampling"), std::string::npos);
  EXPECT_NE(line.find("canceled"), std::string::npos);
  EXPECT_NE(line.find("1/?"), std::string::npos);
  EXPECT_EQ(cells(line), 79);
}

TEST(TuiQueueLine, WideScreensGiveTheRoomToModelAndBar) {
  JobView job = job_of("abcdef012345", "a-rather-long-model-name", 0);
  const std::string line = job_line(job, 120, false);
  EXPECT_EQ(cells(line), 120);
  EXPECT_NE(line.find("a-rather-long-model-"), std::string::npos);
}

}  // namespace
}  // namespace df::tui

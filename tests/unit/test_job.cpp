// Tests of the job records: status names, terminal states, item JSON round trips.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "core/error.h"
#include "core/job.h"

namespace df {
namespace {

constexpr JobStatus kAllStatuses[] = {JobStatus::kQueued, JobStatus::kRunning,
                                      JobStatus::kSucceeded, JobStatus::kFailed,
                                      JobStatus::kCanceled};

TEST(JobStatusNames, RoundTripEveryStatus) {
  EXPECT_EQ(job_status_name(JobStatus::kQueued), "queued");
  EXPECT_EQ(job_status_name(JobStatus::kRunning), "running");
  EXPECT_EQ(job_status_name(JobStatus::kSucceeded), "succeeded");
  EXPECT_EQ(job_status_name(JobStatus::kFailed), "failed");
  EXPECT_EQ(job_status_name(JobStatus::kCanceled), "canceled");
  for (JobStatus status : kAllStatuses) {
    EXPECT_EQ(job_status_from_name(job_status_name(status)), status);
  }
}

TEST(JobStatusNames, UnknownNameIsAValidationErrorListingTheNames) {
  for (const char* name : {"done", "", "QUEUED", "cancelled"}) {
    try {
      job_status_from_name(name);
      ADD_FAILURE() << "accepted '" << name << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("succeeded"), std::string::npos) << e.what();
    }
  }
}

TEST(JobStatusNames, OnlySucceededFailedAndCanceledAreTerminal) {
  EXPECT_FALSE(is_terminal(JobStatus::kQueued));
  EXPECT_FALSE(is_terminal(JobStatus::kRunning));
  EXPECT_TRUE(is_terminal(JobStatus::kSucceeded));
  EXPECT_TRUE(is_terminal(JobStatus::kFailed));
  EXPECT_TRUE(is_terminal(JobStatus::kCanceled));
}

TEST(JobItems, RoundTripThroughJsonWithASeedAboveInt64) {
  JobItem item;
  item.index = 7;
  item.seed = std::numeric_limits<uint64_t>::max() - 3;
  item.status = "running";
  item.step = 4;
  item.total_steps = 20;
  item.progress = 0.2;
  const JobItem back = item_from_json(nlohmann::json::parse(item_to_json(item).dump()));
  EXPECT_EQ(back.index, 7);
  EXPECT_EQ(back.seed, item.seed);
  EXPECT_EQ(back.status, "running");
  EXPECT_EQ(back.step, 4);
  EXPECT_EQ(back.total_steps, 20);
  EXPECT_DOUBLE_EQ(back.progress, 0.2);
}

TEST(JobItems, MissingOptionalFieldsTakeTheirDefaults) {
  const JobItem item = item_from_json({{"index", 2}, {"seed", 42}});
  EXPECT_EQ(item.index, 2);
  EXPECT_EQ(item.seed, 42u);
  EXPECT_EQ(item.status, "queued");
  EXPECT_EQ(item.step, 0);
  EXPECT_EQ(item.total_steps, 0);
  EXPECT_DOUBLE_EQ(item.progress, 0.0);
}

TEST(JobItems, IndexAndSeedAreRequired) {
  EXPECT_THROW(item_from_json({{"seed", 1}}), nlohmann::json::exception);
  EXPECT_THROW(item_from_json({{"index", 1}}), nlohmann::json::exception);
}

}  // namespace
}  // namespace df

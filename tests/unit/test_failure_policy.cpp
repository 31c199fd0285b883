// Tests of the retry policy: which error codes are transient, exponential backoff with a cap.
#include <gtest/gtest.h>

#include <limits>

#include "worker/failure_policy.h"

namespace df::worker {
namespace {

TEST(FailurePolicy, CrashesHangsIoAndUnavailableBackendsAreTransient) {
  EXPECT_TRUE(is_transient("runner_crashed"));
  EXPECT_TRUE(is_transient("runner_hung"));
  EXPECT_TRUE(is_transient("io_error"));
  EXPECT_TRUE(is_transient("unavailable"));
}

TEST(FailurePolicy, UserAndModelErrorsFailAtOnce) {
  for (const char* code :
       {"validation", "model_not_found", "oom", "timeout", "canceled", "unsafe_format",
        "corrupt_file", "unsupported", "internal", "protocol", "", "RUNNER_CRASHED"}) {
    EXPECT_FALSE(is_transient(code)) << code;
  }
}

TEST(FailurePolicy, OnlyAnUnavailableBackendIsAnOutage) {
  EXPECT_TRUE(is_backend_outage("unavailable"));
  for (const char* code : {"runner_crashed", "io_error", "oom", "timeout", "internal", ""}) {
    EXPECT_FALSE(is_backend_outage(code)) << code;
  }
}

TEST(FailurePolicy, DelayDoublesPerAttempt) {
  EXPECT_EQ(retry_delay_ms(1, 500, 60000), 500);
  EXPECT_EQ(retry_delay_ms(2, 500, 60000), 1000);
  EXPECT_EQ(retry_delay_ms(3, 500, 60000), 2000);
  EXPECT_EQ(retry_delay_ms(4, 500, 60000), 4000);
}

TEST(FailurePolicy, DelayIsCapped) {
  EXPECT_EQ(retry_delay_ms(8, 500, 60000), 60000);
  EXPECT_EQ(retry_delay_ms(3, 500, 1500), 1500);
  EXPECT_EQ(retry_delay_ms(1, 5000, 1000), 1000);
}

TEST(FailurePolicy, HugeAttemptCountsDoNotOverflow) {
  EXPECT_EQ(retry_delay_ms(std::numeric_limits<int>::max(), 1000, 300000), 300000);
}

TEST(FailurePolicy, AttemptZeroOrBelowWaitsTheBaseDelay) {
  EXPECT_EQ(retry_delay_ms(0, 500, 60000), 500);
  EXPECT_EQ(retry_delay_ms(-3, 500, 60000), 500);
}

}  // namespace
}  // namespace df::worker

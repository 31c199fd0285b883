// RunnerProcess with event lines of tens of megabytes (a streamed image in base64).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runner/runner_process.h"

namespace df::runner {
namespace {

constexpr int kPatienceMs = 60000;

TEST(RunnerLargeEvents, ALineOfFiftyMegabytesArrivesWholeAndTheNextOneAfterIt) {
  // One line of 50 000 000 'a's inside a JSON string, then a short event in the same write.
  const std::string body =
      "printf '{\"type\":\"streamed_image\",\"data\":\"'; "
      "head -c 50000000 /dev/zero | tr '\\000' a; "
      "printf '\"}\\n{\"type\":\"after\"}\\n'";
  RunnerProcess runner({"/bin/sh", "-c", body});
  const auto big = runner.next_event(kPatienceMs);
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ((*big)["type"], "streamed_image");
  const std::string& data = (*big)["data"].get_ref<const std::string&>();
  EXPECT_EQ(data.size(), 50000000u);
  EXPECT_EQ(data.find_first_not_of('a'), std::string::npos);
  const auto after = runner.next_event(kPatienceMs);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ((*after)["type"], "after");
  EXPECT_FALSE(runner.next_event(kPatienceMs).has_value());  // the script ended
  EXPECT_TRUE(runner.output_closed());
}

}  // namespace
}  // namespace df::runner

// parse_integer: the whole text is one integer, or there is none.
#include <gtest/gtest.h>

#include "core/numbers.h"

namespace df {
namespace {

TEST(ParseInteger, WholeIntegersOnly) {
  EXPECT_EQ(parse_integer("42"), 42);
  EXPECT_EQ(parse_integer("+7"), 7);
  EXPECT_EQ(parse_integer("-3"), -3);
  EXPECT_EQ(parse_integer("9223372036854775807"), INT64_MAX);
  for (const char* bad : {"", "+", "4x", " 4", "4 ", "1.5", "0x10", "9223372036854775808", "--1"}) {
    EXPECT_FALSE(parse_integer(bad)) << bad;
  }
}

TEST(BytesInWords, MegabytesBelowAGigabyteElseGigabytesToATenth) {
  constexpr int64_t kMiB = int64_t{1} << 20;
  EXPECT_EQ(bytes_in_words(512 * kMiB), "512 MB");
  EXPECT_EQ(bytes_in_words(1536 * kMiB), "1.5 GB");
  EXPECT_EQ(bytes_in_words(9216 * kMiB), "9 GB");
  EXPECT_EQ(bytes_in_words(8192 * kMiB), "8 GB");
  EXPECT_EQ(bytes_in_words(3584 * kMiB), "3.5 GB");
  EXPECT_EQ(bytes_in_words(81559 * kMiB), "79.6 GB");
}

}  // namespace
}  // namespace df

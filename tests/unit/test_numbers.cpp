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

}  // namespace
}  // namespace df

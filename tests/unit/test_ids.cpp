// Tests of identifiers and clocks: UUIDv7 layout and ordering, random hex, UTC timestamps.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <set>
#include <string>
#include <thread>

#include "core/ids.h"

namespace df {
namespace {

bool is_lower_hex(const std::string& text) {
  return text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// The 48-bit millisecond timestamp at the front of a UUIDv7.
int64_t uuid_v7_ms(const std::string& id) {
  return static_cast<int64_t>(std::stoull(id.substr(0, 8) + id.substr(9, 4), nullptr, 16));
}

TEST(Ids, UuidV7HasTheRfc9562Layout) {
  for (int i = 0; i < 200; ++i) {
    const std::string id = new_uuid_v7();
    ASSERT_EQ(id.size(), 36u) << id;
    EXPECT_EQ(id[8], '-');
    EXPECT_EQ(id[13], '-');
    EXPECT_EQ(id[18], '-');
    EXPECT_EQ(id[23], '-');
    EXPECT_EQ(id[14], '7') << "version nibble of " << id;
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << "variant of " << id;
    std::string hex = id;
    std::erase(hex, '-');
    EXPECT_TRUE(is_lower_hex(hex)) << id;
  }
}

TEST(Ids, UuidV7CarriesTheCreationMillisecond) {
  const int64_t before = now_ms();
  const std::string id = new_uuid_v7();
  const int64_t after = now_ms();
  EXPECT_GE(uuid_v7_ms(id), before);
  EXPECT_LE(uuid_v7_ms(id), after);
}

TEST(Ids, UuidV7IsUniqueAndSortsByCreationTime) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(seen.insert(new_uuid_v7()).second);
  const std::string earlier = new_uuid_v7();
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  const std::string later = new_uuid_v7();
  EXPECT_LT(earlier, later);
}

TEST(Ids, UuidV7MadeInOneProcessSortInTheOrderTheyWereMade) {
  // Thousands within a few milliseconds: the sequence counts up within each one and carries over.
  std::string previous = new_uuid_v7();
  for (int i = 0; i < 20000; ++i) {
    const std::string next = new_uuid_v7();
    ASSERT_LT(previous, next) << i;
    ASSERT_EQ(next[14], '7');
    ASSERT_NE(std::string("89ab").find(next[19]), std::string::npos);
    previous = next;
  }
}

TEST(Ids, RandomHexHasTwoDigitsPerByteAndDiffers) {
  EXPECT_EQ(random_hex(0), "");
  const std::string a = random_hex(16);
  const std::string b = random_hex(16);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_TRUE(is_lower_hex(a)) << a;
  EXPECT_NE(a, b);
  EXPECT_EQ(random_hex(1).size(), 2u);
}

TEST(Ids, NowMsFollowsTheSystemClock) {
  const int64_t system = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  EXPECT_LE(std::abs(now_ms() - system), 1000);
}

TEST(Ids, Iso8601UtcWritesMillisecondsAndZ) {
  EXPECT_EQ(iso8601_utc(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(iso8601_utc(1795352709123), "2026-11-22T13:05:09.123Z");
  EXPECT_EQ(iso8601_utc(951868799999), "2000-02-29T23:59:59.999Z");
}

}  // namespace
}  // namespace df

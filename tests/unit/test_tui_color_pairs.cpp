// Unit tests for the half-block pictures' colour pair cache.
#include <gtest/gtest.h>

#include <tuple>
#include <vector>

#include "tui/color_pairs.h"

namespace df::tui {
namespace {

struct Defined {
  std::vector<std::tuple<int, int, int>> pairs;
  ColorPairCache cache(int first, int last) {
    return ColorPairCache(first, last, [this](int pair, int fg, int bg) {
      pairs.emplace_back(pair, fg, bg);
    });
  }
};

TEST(TuiColorPairs, DefinesEachPairOnceAndReusesIt) {
  Defined defined;
  ColorPairCache cache = defined.cache(1, 10);
  EXPECT_EQ(cache.pair_for(196, 16), 1);
  EXPECT_EQ(cache.pair_for(21, 16), 2);
  EXPECT_EQ(cache.pair_for(196, 16), 1);
  ASSERT_EQ(defined.pairs.size(), 2u);
  EXPECT_EQ(defined.pairs[0], std::make_tuple(1, 196, 16));
  EXPECT_EQ(defined.pairs[1], std::make_tuple(2, 21, 16));
  EXPECT_EQ(cache.free_pairs(), 8);
}

TEST(TuiColorPairs, RunsOutWithoutRedefiningPairsInUse) {
  Defined defined;
  ColorPairCache cache = defined.cache(5, 6);
  EXPECT_EQ(cache.pair_for(1, 2), 5);
  EXPECT_EQ(cache.pair_for(3, 4), 6);
  EXPECT_FALSE(cache.pair_for(7, 8).has_value());
  EXPECT_EQ(cache.pair_for(1, 2), 5);
  EXPECT_EQ(defined.pairs.size(), 2u);
}

TEST(TuiColorPairs, MakeRoomStartsOverOnlyWhenNeeded) {
  Defined defined;
  ColorPairCache cache = defined.cache(1, 4);
  cache.pair_for(1, 1);
  cache.pair_for(2, 2);
  cache.make_room(2);
  EXPECT_EQ(cache.pair_for(1, 1), 1);  // kept
  cache.make_room(3);
  EXPECT_EQ(cache.free_pairs(), 4);
  EXPECT_EQ(cache.pair_for(9, 9), 1);
  EXPECT_EQ(defined.pairs.back(), std::make_tuple(1, 9, 9));
}

}  // namespace
}  // namespace df::tui

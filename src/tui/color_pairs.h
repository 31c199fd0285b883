// The colour pairs a half-block picture needs, each defined once and reused while it fits.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <utility>

namespace df::tui {

class ColorPairCache {
 public:
  // Pair numbers first..last (inclusive) are this cache's; `define(pair, foreground, background)`
  // sets one up (ncurses' init_pair).
  ColorPairCache(int first, int last, std::function<void(int, int, int)> define);

  // The pair for two colours, defined on first use; nullopt once every pair is taken.
  std::optional<int> pair_for(int foreground, int background);
  // Before a picture of `cells` cells: starts over when fewer pairs than that are left, so one
  // picture never runs out halfway while an earlier one holds them.
  void make_room(int cells);
  int free_pairs() const { return last_ - next_ + 1; }

 private:
  int first_;
  int last_;
  int next_;
  std::function<void(int, int, int)> define_;
  std::map<std::pair<int, int>, int> pairs_;
};

}  // namespace df::tui

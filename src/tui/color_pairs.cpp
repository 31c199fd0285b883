// Colour pair allocation for half-block pictures.
#include "tui/color_pairs.h"

namespace df::tui {

ColorPairCache::ColorPairCache(int first, int last, std::function<void(int, int, int)> define)
    : first_(first), last_(last), next_(first), define_(std::move(define)) {}

std::optional<int> ColorPairCache::pair_for(int foreground, int background) {
  const auto key = std::pair{foreground, background};
  if (const auto found = pairs_.find(key); found != pairs_.end()) return found->second;
  if (next_ > last_) return std::nullopt;
  const int pair = next_++;
  define_(pair, foreground, background);
  pairs_.emplace(key, pair);
  return pair;
}

void ColorPairCache::make_room(int cells) {
  if (free_pairs() >= cells) return;
  pairs_.clear();
  next_ = first_;
}

}  // namespace df::tui

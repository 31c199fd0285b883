// ProgressBar drawing on stderr.
#include "cli/progress_bar.h"

#include <cstdio>
#include <string>

namespace df::cli {

void ProgressBar::start_item(int index, uint64_t seed) {
  item_ = index;
  seed_ = seed;
  step_ = 0;
  total_ = 0;
  if (!terminal_) {
    std::fprintf(stderr, "image %d/%d (seed %llu)\n", index + 1, items_,
                 static_cast<unsigned long long>(seed));
    return;
  }
  draw();
}

void ProgressBar::update(int step, int total) {
  step_ = step;
  total_ = total;
  if (terminal_) draw();
}

void ProgressBar::draw() {
  constexpr int kWidth = 30;
  const int filled = total_ > 0 ? step_ * kWidth / total_ : 0;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(kWidth, '.');
  std::fprintf(stderr, "\r\033[Kimage %d/%d [%s] step %d/%d  seed %llu", item_ + 1, items_,
               bar.c_str(), step_, total_, static_cast<unsigned long long>(seed_));
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::clear() {
  if (terminal_ && drawn_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    drawn_ = false;
  }
}

void ProgressBar::finish() {
  if (terminal_ && drawn_) {
    std::fprintf(stderr, "\n");
    drawn_ = false;
  }
}

}  // namespace df::cli

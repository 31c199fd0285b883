// Terminal progress bar for batches of images: one line, redrawn in place; silent off a terminal.
#pragma once

#include <cstdint>

namespace df::cli {

class ProgressBar {
 public:
  ProgressBar(bool terminal, int items) : terminal_(terminal), items_(items) {}
  void start_item(int index, uint64_t seed);
  void update(int step, int total);
  void clear();   // erase the bar before printing other lines
  void finish();  // leave the terminal on a fresh line

 private:
  void draw();

  bool terminal_;
  int items_;
  int item_ = 0;
  uint64_t seed_ = 0;
  int step_ = 0;
  int total_ = 0;
  bool drawn_ = false;
};

}  // namespace df::cli

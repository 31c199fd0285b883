// Puts an image in a box of the curses screen: half blocks through colour pairs, or sixel/kitty.
#pragma once

#include <cstdio>
#include <memory>
#include <string>

#include "image/image8.h"
#include "tui/color_pairs.h"
#include "tui/terminal_image.h"

namespace df::tui {

// A box of character cells on the screen.
struct CellBox {
  int row = 0;
  int col = 0;
  int rows = 0;
  int cols = 0;
};

// The protocol a screen can use: half blocks need 256 colours and UTF-8, else none.
ImageProtocol usable_protocol(ImageProtocol wanted, int colors, bool utf8);

class ImagePainter {
 public:
  // `protocol` as usable_protocol gives it; `terminal` is where sixel and kitty escapes go.
  ImagePainter(ImageProtocol protocol, std::FILE* terminal);

  ImageProtocol protocol() const { return protocol_; }
  // While the frame is drawn (after erase, before refresh): half blocks go into the screen now; a
  // sixel or kitty image is remembered, identified by `key`, and its box's lines are marked to be
  // sent again when it is new, so the old picture is wiped.
  void draw(const Image8& image, const std::string& key, CellBox box);
  // After the frame is on the terminal: writes the remembered sixel or kitty image at its box
  // when it differs from the one shown; a frame that drew none removes a kitty image.
  void after_refresh();
  // The terminal was cleared (resize, another screen): the next frame draws its image again.
  void forget_shown();

 private:
  void draw_blocks(const Image8& image, CellBox box);
  std::string terminal_sequence(const Image8& image, CellBox box) const;

  ImageProtocol protocol_;
  std::FILE* terminal_;
  std::unique_ptr<ColorPairCache> pairs_;
  std::string sequence_key_;  // the image and box the escapes in sequence_ draw
  std::string sequence_;
  CellBox box_;
  bool frame_has_image_ = false;
  std::string shown_key_;  // what the terminal shows now
};

}  // namespace df::tui

// Images on the curses screen: half-block cells, or sixel/kitty escapes after each refresh.
#include "tui/image_painter.h"

#include <algorithm>
#include <sys/ioctl.h>
#include <unistd.h>

#include "tui/curses_include.h"

namespace df::tui {

namespace {

constexpr const char* kKittyDeleteAll = "\x1b_Ga=d\x1b\\";

// The size of a character cell in pixels, from the terminal when it says, else a common one.
std::pair<int, int> cell_pixels(std::FILE* terminal) {
  winsize size{};
  if (ioctl(fileno(terminal), TIOCGWINSZ, &size) == 0 && size.ws_xpixel > 0 && size.ws_col > 0 &&
      size.ws_ypixel > 0 && size.ws_row > 0) {
    return {size.ws_xpixel / size.ws_col, size.ws_ypixel / size.ws_row};
  }
  return {10, 20};
}

}  // namespace

ImageProtocol usable_protocol(ImageProtocol wanted, int colors, bool utf8) {
  if (wanted == ImageProtocol::kBlocks && (colors < 256 || !utf8)) return ImageProtocol::kNone;
  return wanted;
}

ImagePainter::ImagePainter(ImageProtocol protocol, std::FILE* terminal)
    : protocol_(protocol), terminal_(terminal) {
  if (protocol_ == ImageProtocol::kBlocks) {
    const int last = std::min(COLOR_PAIRS - 1, 32767);
    pairs_ = std::make_unique<ColorPairCache>(1, last, [](int pair, int fg, int bg) {
      init_pair(static_cast<short>(pair), static_cast<short>(fg), static_cast<short>(bg));
    });
  }
}

void ImagePainter::draw(const Image8& image, const std::string& key, CellBox box) {
  if (box.rows <= 0 || box.cols <= 0 || image.width <= 0 || image.height <= 0) return;
  if (protocol_ == ImageProtocol::kBlocks) {
    draw_blocks(image, box);
    return;
  }
  if (protocol_ == ImageProtocol::kNone) return;
  const std::string identity = key + "@" + std::to_string(box.row) + "," + std::to_string(box.col) +
                               "," + std::to_string(box.rows) + "x" + std::to_string(box.cols);
  if (identity != sequence_key_) {
    sequence_ = terminal_sequence(image, box);
    sequence_key_ = identity;
    box_ = box;
  }
  frame_has_image_ = true;
  if (identity != shown_key_) touchline(stdscr, box.row, box.rows);
}

std::string ImagePainter::terminal_sequence(const Image8& image, CellBox box) const {
  if (protocol_ == ImageProtocol::kKitty) {
    return kKittyDeleteAll + kitty_sequence(image, box.cols, box.rows);
  }
  const auto [cell_width, cell_height] = cell_pixels(terminal_);
  return sixel_sequence(image, box.cols * cell_width, box.rows * cell_height);
}

void ImagePainter::draw_blocks(const Image8& image, CellBox box) {
  const auto cells = block_cells(image, box.cols, box.rows);
  int count = 0;
  for (const auto& row : cells) count += static_cast<int>(row.size());
  pairs_->make_room(count);
  for (std::size_t y = 0; y < cells.size(); ++y) {
    for (std::size_t x = 0; x < cells[y].size(); ++x) {
      const auto pair = pairs_->pair_for(xterm_256_color(cells[y][x].top),
                                         xterm_256_color(cells[y][x].bottom));
      if (!pair) continue;
      cchar_t cell;
      const wchar_t upper_half[] = {L'\u2580', L'\0'};
      setcchar(&cell, upper_half, A_NORMAL, static_cast<short>(*pair), nullptr);
      mvadd_wch(box.row + static_cast<int>(y), box.col + static_cast<int>(x), &cell);
    }
  }
}

void ImagePainter::after_refresh() {
  if (protocol_ != ImageProtocol::kSixel && protocol_ != ImageProtocol::kKitty) return;
  if (!frame_has_image_) {
    if (!shown_key_.empty() && protocol_ == ImageProtocol::kKitty) {
      std::fputs(kKittyDeleteAll, terminal_);
      std::fflush(terminal_);
    }
    shown_key_.clear();
    return;
  }
  frame_has_image_ = false;
  if (sequence_key_ == shown_key_) return;
  std::fprintf(terminal_, "\x1b" "7\x1b[%d;%dH", box_.row + 1, box_.col + 1);
  std::fwrite(sequence_.data(), 1, sequence_.size(), terminal_);
  std::fputs("\x1b" "8", terminal_);
  std::fflush(terminal_);
  shown_key_ = sequence_key_;
}

void ImagePainter::forget_shown() { shown_key_.clear(); }

}  // namespace df::tui

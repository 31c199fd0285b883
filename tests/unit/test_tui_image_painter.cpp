// Unit tests for putting images on the curses screen: half blocks in colour pairs, sixel escapes.
#include <gtest/gtest.h>

#include <clocale>
#include <cstdio>
#include <string>

#include "tui/curses_include.h"

#include "tui/image_painter.h"

namespace df::tui {
namespace {

Image8 halves() {  // red on top, blue below
  Image8 image{4, 4, 3, std::vector<uint8_t>(48, 0)};
  for (int i = 0; i < 16; ++i) image.pixels[i * 3 + (i < 8 ? 0 : 2)] = 255;
  return image;
}

std::string contents(std::FILE* file) {
  std::fflush(file);
  std::rewind(file);
  std::string text;
  for (int c; (c = std::fgetc(file)) != EOF;) text.push_back(static_cast<char>(c));
  std::fseek(file, 0, SEEK_END);
  return text;
}

class TuiImagePainter : public ::testing::Test {
 protected:
  void open(const char* terminal) {
    previous_locale_ = std::setlocale(LC_ALL, nullptr);
    std::setlocale(LC_ALL, "C.UTF-8");
    output_ = std::tmpfile();
    input_ = std::fopen("/dev/null", "r");
    use_env(FALSE);
    screen_ = newterm(terminal, output_, input_);
    ASSERT_NE(screen_, nullptr);
    start_color();
  }
  void TearDown() override {
    if (screen_ != nullptr) {
      endwin();
      delscreen(screen_);
    }
    if (output_ != nullptr) std::fclose(output_);
    if (input_ != nullptr) std::fclose(input_);
    std::setlocale(LC_ALL, previous_locale_.c_str());
  }

  std::string previous_locale_;
  std::FILE* output_ = nullptr;
  std::FILE* input_ = nullptr;
  SCREEN* screen_ = nullptr;
};

TEST(TuiImageProtocols, BlocksNeed256ColoursAndUtf8) {
  EXPECT_EQ(usable_protocol(ImageProtocol::kBlocks, 256, true), ImageProtocol::kBlocks);
  EXPECT_EQ(usable_protocol(ImageProtocol::kBlocks, 8, true), ImageProtocol::kNone);
  EXPECT_EQ(usable_protocol(ImageProtocol::kBlocks, 256, false), ImageProtocol::kNone);
  EXPECT_EQ(usable_protocol(ImageProtocol::kSixel, 0, false), ImageProtocol::kSixel);
  EXPECT_EQ(usable_protocol(ImageProtocol::kNone, 256, true), ImageProtocol::kNone);
}

TEST_F(TuiImagePainter, HalfBlocksTakeTheImagesColours) {
  open("xterm-256color");
  ImagePainter painter(ImageProtocol::kBlocks, output_);
  painter.draw(halves(), "halves", {2, 3, 2, 4});  // 4x4 pixels: two rows of half blocks
  cchar_t cell;
  ASSERT_EQ(mvin_wch(2, 3, &cell), OK);
  wchar_t text[CCHARW_MAX + 1] = {};
  attr_t attributes = 0;
  short pair = 0;
  getcchar(&cell, text, &attributes, &pair, nullptr);
  EXPECT_EQ(text[0], L'\u2580');
  ASSERT_GT(pair, 0);
  short foreground = 0;
  short background = 0;
  pair_content(pair, &foreground, &background);
  const uint8_t red[3] = {255, 0, 0};
  const uint8_t blue[3] = {0, 0, 255};
  EXPECT_EQ(foreground, xterm_256_color(red));   // the upper half: red rows
  EXPECT_EQ(background, xterm_256_color(red));
  ASSERT_EQ(mvin_wch(3, 3, &cell), OK);
  getcchar(&cell, text, &attributes, &pair, nullptr);
  pair_content(pair, &foreground, &background);
  EXPECT_EQ(foreground, xterm_256_color(blue));
}

TEST_F(TuiImagePainter, SixelGoesOutAfterTheRefreshAtItsBoxOnce) {
  open("xterm-256color");
  ImagePainter painter(ImageProtocol::kSixel, output_);
  painter.draw(halves(), "a", {2, 4, 3, 6});
  const long before = std::ftell(output_);
  painter.after_refresh();
  std::string written = contents(output_).substr(static_cast<std::size_t>(before));
  EXPECT_NE(written.find("\x1b[3;5H"), std::string::npos);
  EXPECT_NE(written.find("\x1bP"), std::string::npos);  // the sixel's DCS
  const long after = std::ftell(output_);
  painter.draw(halves(), "a", {2, 4, 3, 6});
  painter.after_refresh();
  EXPECT_EQ(contents(output_).size(), static_cast<std::size_t>(after));  // shown already
  painter.forget_shown();
  painter.draw(halves(), "a", {2, 4, 3, 6});
  painter.after_refresh();
  EXPECT_GT(contents(output_).size(), static_cast<std::size_t>(after));
}

}  // namespace
}  // namespace df::tui

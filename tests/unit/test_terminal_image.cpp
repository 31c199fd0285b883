// Unit tests for drawing images in a terminal: protocol detection, sixel, kitty and half blocks.
#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <map>
#include <regex>
#include <set>

#include "core/base64.h"
#include "core/error.h"
#include "image/image.h"
#include "tui/terminal_image.h"

namespace df::tui {
namespace {

Image8 image_of(int width, int height, const std::function<std::array<uint8_t, 3>(int, int)>& at) {
  Image8 image{width, height, 3, {}};
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const auto rgb = at(x, y);
      image.pixels.insert(image.pixels.end(), rgb.begin(), rgb.end());
    }
  }
  return image;
}

ImageProtocol detected(const std::map<std::string, std::string>& environment) {
  return detect_image_protocol([&](const char* name) -> const char* {
    const auto found = environment.find(name);
    return found == environment.end() ? nullptr : found->second.c_str();
  });
}

TEST(TerminalImage, DetectsTheProtocolFromTheEnvironment) {
  EXPECT_EQ(detected({}), ImageProtocol::kNone);
  EXPECT_EQ(detected({{"TERM", "xterm"}}), ImageProtocol::kNone);
  EXPECT_EQ(detected({{"TERM", "vt100"}}), ImageProtocol::kNone);
  EXPECT_EQ(detected({{"TERM", "xterm-256color"}}), ImageProtocol::kBlocks);
  EXPECT_EQ(detected({{"TERM", "screen-256color"}}), ImageProtocol::kBlocks);
  EXPECT_EQ(detected({{"TERM", "xterm"}, {"COLORTERM", "truecolor"}}), ImageProtocol::kBlocks);
  EXPECT_EQ(detected({{"TERM", "xterm-kitty"}}), ImageProtocol::kKitty);
  EXPECT_EQ(detected({{"TERM", "xterm-256color"}, {"KITTY_WINDOW_ID", "1"}}),
            ImageProtocol::kKitty);
  EXPECT_EQ(detected({{"TERM", "foot"}}), ImageProtocol::kSixel);
  EXPECT_EQ(detected({{"TERM", "mlterm"}}), ImageProtocol::kSixel);
  EXPECT_EQ(detected({{"TERM", "contour"}}), ImageProtocol::kSixel);
  EXPECT_EQ(detected({{"TERM", "xterm-256color"}, {"TERM_PROGRAM", "WezTerm"}}),
            ImageProtocol::kSixel);
}

TEST(TerminalImage, TheChoiceInTheEnvironmentDecides) {
  const std::map<std::string, std::string> kitty = {{"TERM", "xterm-kitty"}};
  for (ImageProtocol protocol : {ImageProtocol::kNone, ImageProtocol::kBlocks,
                                 ImageProtocol::kSixel, ImageProtocol::kKitty}) {
    auto environment = kitty;
    environment["DREAMFORGE_TUI_IMAGES"] = image_protocol_name(protocol);
    EXPECT_EQ(detected(environment), protocol) << image_protocol_name(protocol);
  }
  try {
    detected({{"DREAMFORGE_TUI_IMAGES", "iterm"}});
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(error.what()).find("'iterm'"), std::string::npos) << error.what();
  }
}

TEST(TerminalImage, SixelOfFourPixelsIsExact) {
  // red green / blue white: palette indices (r*7 + g)*6 + b = 210, 36 / 5, 251.
  const Image8 image = image_of(2, 2, [](int x, int y) {
    const std::array<std::array<uint8_t, 3>, 4> colours = {
        {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}}};
    return colours[y * 2 + x];
  });
  EXPECT_EQ(sixel_sequence(image, 2, 2),
            "\x1bPq\"1;1;2;2"
            "#5;2;0;0;100#36;2;0;100;0#210;2;100;0;0#251;2;100;100;100"
            "#5A$#36?@$#210@$#251?A"
            "\x1b\\");
}

TEST(TerminalImage, SixelRunsAreRunLengthEncodedAndBandsSeparated) {
  const Image8 black = image_of(8, 7, [](int, int) { return std::array<uint8_t, 3>{0, 0, 0}; });
  // Rows 0-5 fill the first band (all six bits: '~'), row 6 the second (bit 0: '@').
  EXPECT_EQ(sixel_sequence(black, 8, 7), "\x1bPq\"1;1;8;7#0;2;0;0;0#0!8~-#0!8@\x1b\\");
}

TEST(TerminalImage, SixelScalesToFitAndEnlargesAtMostFourTimes) {
  const Image8 wide = image_of(64, 32, [](int x, int) {
    return std::array<uint8_t, 3>{static_cast<uint8_t>(x * 4), 0, 0};
  });
  EXPECT_NE(sixel_sequence(wide, 32, 32).find("\"1;1;32;16#"), std::string::npos);
  const Image8 tiny = image_of(2, 2, [](int, int) { return std::array<uint8_t, 3>{9, 9, 9}; });
  EXPECT_NE(sixel_sequence(tiny, 100, 100).find("\"1;1;8;8#"), std::string::npos);
}

TEST(TerminalImage, SixelOfAGradientUsesAtMost256Colours) {
  const Image8 gradient = image_of(256, 64, [](int x, int y) {
    return std::array<uint8_t, 3>{static_cast<uint8_t>(x), static_cast<uint8_t>(y * 4),
                                  static_cast<uint8_t>(255 - x)};
  });
  const std::string sixel = sixel_sequence(gradient, 256, 64);
  ASSERT_TRUE(sixel.starts_with("\x1bPq\"1;1;256;64#"));
  ASSERT_TRUE(sixel.ends_with("\x1b\\"));
  const std::regex definition("#([0-9]+);2;([0-9]+);([0-9]+);([0-9]+)");
  std::set<int> registers;
  for (auto it = std::sregex_iterator(sixel.begin(), sixel.end(), definition);
       it != std::sregex_iterator(); ++it) {
    registers.insert(std::stoi((*it)[1]));
    for (int channel = 2; channel <= 4; ++channel) EXPECT_LE(std::stoi((*it)[channel]), 100);
  }
  EXPECT_LE(registers.size(), 256u);
  EXPECT_GT(registers.size(), 20u);  // a gradient is not flattened to a few colours
  EXPECT_LE(*registers.rbegin(), 255);
}

TEST(TerminalImage, KittyChunksDecodeBackToTheSamePixels) {
  const Image8 image = image_of(97, 61, [](int x, int y) {  // noise: PNG cannot shrink it much
    uint32_t hash = static_cast<uint32_t>(x) * 73856093u ^ static_cast<uint32_t>(y) * 19349663u;
    hash = (hash ^ (hash >> 13)) * 0x5bd1e995u;
    hash ^= hash >> 15;
    return std::array<uint8_t, 3>{static_cast<uint8_t>(hash), static_cast<uint8_t>(hash >> 8),
                                  static_cast<uint8_t>(hash >> 16)};
  });
  const std::string sequence = kitty_sequence(image, 20, 10);
  std::string data;
  std::vector<std::string> keys;
  for (size_t start = 0; start < sequence.size();) {
    ASSERT_EQ(sequence.compare(start, 3, "\x1b_G"), 0) << "a chunk starts at " << start;
    const size_t semicolon = sequence.find(';', start);
    const size_t end = sequence.find("\x1b\\", start);
    ASSERT_LT(semicolon, end);
    keys.push_back(sequence.substr(start + 3, semicolon - start - 3));
    EXPECT_LE(end - semicolon - 1, 4096u);
    data += sequence.substr(semicolon + 1, end - semicolon - 1);
    start = end + 2;
  }
  ASSERT_GE(keys.size(), 2u) << "a noisy image takes more than one chunk";
  EXPECT_EQ(keys.front(), "f=100,a=T,q=2,c=20,r=10,m=1");
  for (size_t i = 1; i + 1 < keys.size(); ++i) EXPECT_EQ(keys[i], "m=1");
  EXPECT_EQ(keys.back(), "m=0");
  const auto png = decode_base64(data);
  ASSERT_TRUE(png.has_value());
  const Image8 decoded = decode_image(*png);
  EXPECT_EQ(decoded.width, 97);
  EXPECT_EQ(decoded.height, 61);
  EXPECT_EQ(decoded.pixels, image.pixels);
}

TEST(TerminalImage, BlockCellsOfAHalfRedHalfBlueImage) {
  const Image8 left_right = image_of(8, 8, [](int x, int) {
    return x < 4 ? std::array<uint8_t, 3>{255, 0, 0} : std::array<uint8_t, 3>{0, 0, 255};
  });
  const auto cells = block_cells(left_right, 4, 2);  // 4 x 4 square half-cells
  ASSERT_EQ(cells.size(), 2u);
  ASSERT_EQ(cells[0].size(), 4u);
  for (const auto& row : cells) {
    for (int x = 0; x < 4; ++x) {
      const std::array<uint8_t, 3> want = x < 2 ? std::array<uint8_t, 3>{255, 0, 0}
                                                : std::array<uint8_t, 3>{0, 0, 255};
      EXPECT_EQ(std::to_array(row[x].top), want);
      EXPECT_EQ(std::to_array(row[x].bottom), want);
    }
  }
  const Image8 top_bottom = image_of(2, 2, [](int, int y) {
    return y == 0 ? std::array<uint8_t, 3>{255, 0, 0} : std::array<uint8_t, 3>{0, 0, 255};
  });
  const auto cell = block_cells(top_bottom, 1, 1);
  ASSERT_EQ(cell.size(), 1u);
  ASSERT_EQ(cell[0].size(), 1u);
  EXPECT_EQ(std::to_array(cell[0][0].top), (std::array<uint8_t, 3>{255, 0, 0}));
  EXPECT_EQ(std::to_array(cell[0][0].bottom), (std::array<uint8_t, 3>{0, 0, 255}));
}

TEST(TerminalImage, BlockCellsKeepTheAspectOfTallCells) {
  const Image8 square = image_of(64, 64, [](int, int) { return std::array<uint8_t, 3>{1, 2, 3}; });
  const auto cells = block_cells(square, 80, 24);  // 48 half-cells high: 48 x 48
  EXPECT_EQ(cells.size(), 24u);
  EXPECT_EQ(cells[0].size(), 48u);
  const Image8 wide = image_of(200, 50, [](int, int) { return std::array<uint8_t, 3>{1, 2, 3}; });
  const auto wide_cells = block_cells(wide, 80, 24);  // 80 wide, 20 half-cells high
  EXPECT_EQ(wide_cells.size(), 10u);
  EXPECT_EQ(wide_cells[0].size(), 80u);
  EXPECT_EQ(std::to_array(wide_cells[5][40].bottom), (std::array<uint8_t, 3>{1, 2, 3}));
}

TEST(TerminalImage, BlockCellsAverageWhatTheyShrink) {
  const Image8 stripes = image_of(4, 4, [](int x, int) {
    return x % 2 == 0 ? std::array<uint8_t, 3>{200, 0, 0} : std::array<uint8_t, 3>{0, 0, 100};
  });
  const auto cells = block_cells(stripes, 2, 1);  // 2 x 2 half-cells: each the mean of 2 x 2
  ASSERT_EQ(cells.size(), 1u);
  ASSERT_EQ(cells[0].size(), 2u);
  EXPECT_EQ(std::to_array(cells[0][1].top), (std::array<uint8_t, 3>{100, 0, 50}));
}

TEST(TerminalImage, Xterm256ColoursOfPureColours) {
  const auto colour = [](uint8_t r, uint8_t g, uint8_t b) {
    const uint8_t rgb[3] = {r, g, b};
    return xterm_256_color(rgb);
  };
  EXPECT_EQ(colour(0, 0, 0), 16);
  EXPECT_EQ(colour(255, 0, 0), 196);
  EXPECT_EQ(colour(0, 255, 0), 46);
  EXPECT_EQ(colour(0, 0, 255), 21);
  EXPECT_EQ(colour(255, 255, 255), 231);
  EXPECT_EQ(colour(128, 128, 128), 244);  // the grey ramp's 8 + 10 * 12
  EXPECT_EQ(colour(95, 135, 175), 67);    // 16 + 36 * 1 + 6 * 2 + 3
  EXPECT_EQ(colour(250, 5, 3), 196);
}

}  // namespace
}  // namespace df::tui

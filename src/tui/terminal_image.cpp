// Draws RGB images in a terminal: sixel, the kitty graphics protocol, or half-block characters.
#include "tui/terminal_image.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <string_view>

#include "core/base64.h"
#include "core/error.h"
#include "image/codec_support.h"
#include "image/png_codec.h"

namespace df::tui {
namespace {

constexpr double kLargestEnlargement = 4.0;
constexpr size_t kKittyChunkBytes = 4096;

// An RGB raster (alpha dropped) of exactly width * height pixels.
struct Rgb {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // 3 bytes a pixel, row-major

  const uint8_t* at(int x, int y) const {
    return &pixels[(static_cast<size_t>(y) * width + x) * 3];
  }
};

// The share of source pixel `index` inside the span [from, to) (both in source pixels).
double coverage(int index, double from, double to) {
  return std::max(0.0, std::min<double>(index + 1, to) - std::max<double>(index, from));
}

// `image` resampled to `width` x `height`: each output pixel is the mean of the source area it
// covers, weighted by how much of each source pixel lies inside (a box filter, also for
// enlarging).
Rgb scaled_by_area(const Image8& image, int width, int height) {
  validate_image(image);
  Rgb out{width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3)};
  const double step_x = static_cast<double>(image.width) / width;
  const double step_y = static_cast<double>(image.height) / height;
  for (int y = 0; y < height; ++y) {
    const double top = y * step_y;
    const double bottom = top + step_y;
    for (int x = 0; x < width; ++x) {
      const double left = x * step_x;
      const double right = left + step_x;
      std::array<double, 3> sum{};
      double total = 0;
      for (int sy = static_cast<int>(top); sy < image.height && sy < bottom; ++sy) {
        const double wy = coverage(sy, top, bottom);
        for (int sx = static_cast<int>(left); sx < image.width && sx < right; ++sx) {
          const double weight = wy * coverage(sx, left, right);
          const uint8_t* source =
              &image.pixels[(static_cast<size_t>(sy) * image.width + sx) * image.channels];
          for (int c = 0; c < 3; ++c) sum[c] += weight * source[c];
          total += weight;
        }
      }
      uint8_t* target = &out.pixels[(static_cast<size_t>(y) * width + x) * 3];
      for (int c = 0; c < 3; ++c) target[c] = static_cast<uint8_t>(std::lround(sum[c] / total));
    }
  }
  return out;
}

// The largest size with the image's aspect inside `box_width` x `box_height`, at most
// `largest_scale` times the image, at least one pixel a side.
std::pair<int, int> fitted_size(const Image8& image, double box_width, double box_height,
                                double largest_scale) {
  validate_image(image);
  const double scale =
      std::min({box_width / image.width, box_height / image.height, largest_scale});
  const auto side = [&](int length, double box) {
    return static_cast<int>(std::clamp<double>(std::round(length * scale), 1, std::max(1.0, box)));
  };
  return {side(image.width, box_width), side(image.height, box_height)};
}

// The fixed sixel palette: 6 levels of red, 7 of green (the eye's sharpest channel), 6 of blue.
constexpr int kRedLevels = 6;
constexpr int kGreenLevels = 7;
constexpr int kBlueLevels = 6;

int level_of(uint8_t value, int levels) { return (value * (levels - 1) + 127) / 255; }

int palette_index(const uint8_t* rgb) {
  return (level_of(rgb[0], kRedLevels) * kGreenLevels + level_of(rgb[1], kGreenLevels)) *
             kBlueLevels +
         level_of(rgb[2], kBlueLevels);
}

int level_percent(int level, int levels) { return (level * 100 + (levels - 1) / 2) / (levels - 1); }

// "#i;2;r;g;b": the palette colour `index` defined in percent.
std::string colour_register(int index) {
  const int blue = index % kBlueLevels;
  const int green = index / kBlueLevels % kGreenLevels;
  const int red = index / (kBlueLevels * kGreenLevels);
  return "#" + std::to_string(index) + ";2;" + std::to_string(level_percent(red, kRedLevels)) +
         ";" + std::to_string(level_percent(green, kGreenLevels)) + ";" +
         std::to_string(level_percent(blue, kBlueLevels));
}

// Sixel characters with runs of four or more written as "!n<char>"; trailing empty sixels
// ('?') are left out.
std::string run_length_encoded(std::string_view sixels) {
  const size_t end = sixels.find_last_not_of('?') + 1;
  std::string out;
  for (size_t i = 0; i < end;) {
    size_t run = 1;
    while (i + run < end && sixels[i + run] == sixels[i]) ++run;
    out += run >= 4 ? "!" + std::to_string(run) + sixels[i] : std::string(run, sixels[i]);
    i += run;
  }
  return out;
}

// One six-row band starting at `top`: for each palette colour in it, "#i" and its sixels,
// colours separated by "$" (back to the band's first column).
std::string sixel_band(const std::vector<int>& indices, int width, int height, int top) {
  std::map<int, std::string> rows;  // palette index -> sixel characters
  for (int dy = 0; dy < 6 && top + dy < height; ++dy) {
    for (int x = 0; x < width; ++x) {
      const int index = indices[static_cast<size_t>(top + dy) * width + x];
      auto [row, added] = rows.try_emplace(index, std::string(width, '?'));
      row->second[x] = static_cast<char>(row->second[x] + (1 << dy));
    }
  }
  std::string band;
  for (const auto& [index, sixels] : rows) {
    if (!band.empty()) band += '$';
    band += "#" + std::to_string(index) + run_length_encoded(sixels);
  }
  return band;
}

bool is_one_of(std::string_view value, std::initializer_list<std::string_view> prefixes) {
  std::string lower(value);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return std::any_of(prefixes.begin(), prefixes.end(),
                     [&](std::string_view prefix) { return lower.starts_with(prefix); });
}

std::string_view variable(const std::function<const char*(const char*)>& getenv_like,
                          const char* name) {
  const char* value = getenv_like(name);
  return value == nullptr ? std::string_view() : std::string_view(value);
}

// The 240 xterm colours a terminal's theme does not change (16..255) as RGB.
std::array<std::array<int, 3>, 240> xterm_fixed_colours() {
  constexpr std::array<int, 6> kCubeLevels = {0, 95, 135, 175, 215, 255};
  std::array<std::array<int, 3>, 240> colours{};
  for (int i = 0; i < 216; ++i) {
    colours[i] = {kCubeLevels[i / 36], kCubeLevels[i / 6 % 6], kCubeLevels[i % 6]};
  }
  for (int i = 0; i < 24; ++i) colours[216 + i] = {8 + 10 * i, 8 + 10 * i, 8 + 10 * i};
  return colours;
}

}  // namespace

const char* image_protocol_name(ImageProtocol protocol) {
  switch (protocol) {
    case ImageProtocol::kBlocks:
      return "blocks";
    case ImageProtocol::kSixel:
      return "sixel";
    case ImageProtocol::kKitty:
      return "kitty";
    case ImageProtocol::kNone:
      break;
  }
  return "none";
}

ImageProtocol detect_image_protocol(const std::function<const char*(const char*)>& getenv_like) {
  const std::string_view chosen = variable(getenv_like, "DREAMFORGE_TUI_IMAGES");
  if (!chosen.empty()) {
    for (ImageProtocol protocol : {ImageProtocol::kNone, ImageProtocol::kBlocks,
                                   ImageProtocol::kSixel, ImageProtocol::kKitty}) {
      if (chosen == image_protocol_name(protocol)) return protocol;
    }
    throw Error(ErrorCode::kInvalidArgument,
                "DREAMFORGE_TUI_IMAGES must be none, blocks, sixel or kitty, not '" +
                    std::string(chosen) + "'");
  }
  const std::string_view term = variable(getenv_like, "TERM");
  if (!variable(getenv_like, "KITTY_WINDOW_ID").empty() || term == "xterm-kitty") {
    return ImageProtocol::kKitty;
  }
  const std::initializer_list<std::string_view> sixel_terminals = {"foot", "mlterm", "wezterm",
                                                                   "contour"};
  if (is_one_of(variable(getenv_like, "TERM_PROGRAM"), sixel_terminals) ||
      is_one_of(term, sixel_terminals)) {
    return ImageProtocol::kSixel;
  }
  // Half blocks need more than the 8 basic colours: true colour, or the 256-colour palette.
  const std::string_view colorterm = variable(getenv_like, "COLORTERM");
  if (colorterm == "truecolor" || colorterm == "24bit" || term.find("256color") != term.npos) {
    return ImageProtocol::kBlocks;
  }
  return ImageProtocol::kNone;
}

std::string sixel_sequence(const Image8& image, int width_px, int height_px) {
  const auto [width, height] = fitted_size(image, width_px, height_px, kLargestEnlargement);
  const Rgb scaled = scaled_by_area(image, width, height);
  std::vector<int> indices(static_cast<size_t>(width) * height);
  std::set<int> used;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      indices[static_cast<size_t>(y) * width + x] = palette_index(scaled.at(x, y));
      used.insert(indices[static_cast<size_t>(y) * width + x]);
    }
  }
  std::string out = "\x1bPq\"1;1;" + std::to_string(width) + ";" + std::to_string(height);
  for (int index : used) out += colour_register(index);
  for (int top = 0; top < height; top += 6) {
    if (top > 0) out += '-';
    out += sixel_band(indices, width, height, top);
  }
  return out + "\x1b\\";
}

std::string kitty_sequence(const Image8& image, int cols, int rows) {
  const std::vector<uint8_t> png = encode_png(image, {}, kPngStreamCompressionLevel);
  const std::string data = encode_base64(png);
  std::string out;
  for (size_t offset = 0; offset < data.size(); offset += kKittyChunkBytes) {
    const bool last = offset + kKittyChunkBytes >= data.size();
    // The first chunk carries the keys; q=2 keeps the terminal from answering on our input.
    const std::string keys = offset == 0 ? "f=100,a=T,q=2,c=" + std::to_string(cols) +
                                               ",r=" + std::to_string(rows) + ","
                                         : "";
    out += "\x1b_G" + keys + (last ? "m=0;" : "m=1;") + data.substr(offset, kKittyChunkBytes) +
           "\x1b\\";
  }
  return out;
}

std::vector<std::vector<BlockCell>> block_cells(const Image8& image, int cols, int rows) {
  // Half a cell is square, so the picture is fitted into cols x 2*rows square pixels, in whole
  // cells.
  const auto [width, height_px] =
      fitted_size(image, cols, 2.0 * rows, std::numeric_limits<double>::infinity());
  const int height = std::clamp((height_px + 1) / 2, 1, std::max(1, rows));
  const Rgb scaled = scaled_by_area(image, width, 2 * height);
  std::vector<std::vector<BlockCell>> cells(height, std::vector<BlockCell>(width));
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      std::copy_n(scaled.at(x, 2 * y), 3, cells[y][x].top);
      std::copy_n(scaled.at(x, 2 * y + 1), 3, cells[y][x].bottom);
    }
  }
  return cells;
}

int xterm_256_color(const uint8_t rgb[3]) {
  static const auto colours = xterm_fixed_colours();
  int best = 0;
  int best_distance = std::numeric_limits<int>::max();
  for (int i = 0; i < static_cast<int>(colours.size()); ++i) {
    int distance = 0;
    for (int c = 0; c < 3; ++c) distance += (colours[i][c] - rgb[c]) * (colours[i][c] - rgb[c]);
    if (distance < best_distance) {
      best = i;
      best_distance = distance;
    }
  }
  return 16 + best;
}

}  // namespace df::tui

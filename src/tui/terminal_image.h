// Draws RGB images in a terminal: sixel, the kitty graphics protocol, or half-block characters.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "image/image8.h"

namespace df::tui {

enum class ImageProtocol { kNone, kBlocks, kSixel, kKitty };
const char* image_protocol_name(ImageProtocol protocol);  // "none", "blocks", "sixel", "kitty"

// What the terminal can show, from its environment (`getenv`-like lookup): DREAMFORGE_TUI_IMAGES
// (none|blocks|sixel|kitty) decides when set; else kitty for KITTY_WINDOW_ID or TERM xterm-kitty,
// sixel for TERM_PROGRAM/TERM known to draw it (foot, mlterm, WezTerm, contour), blocks for a
// colour terminal, none otherwise (a plain 80x24 terminal gets text only).
ImageProtocol detect_image_protocol(const std::function<const char*(const char*)>& getenv_like);

// `image` scaled to fit `width_px` x `height_px` (aspect kept, never enlarged past 4x), as one
// sixel sequence (DCS q ... ST, at most 256 colours) to write at the cursor.
std::string sixel_sequence(const Image8& image, int width_px, int height_px);
// `image` as kitty graphics protocol escapes (PNG, base64 in chunks of 4096) placed in a box of
// `cols` x `rows` cells at the cursor.
std::string kitty_sequence(const Image8& image, int cols, int rows);

// One character cell of a half-block picture: the upper half in `top`, the lower in `bottom`
// (drawn as U+2580 with foreground `top` and background `bottom`).
struct BlockCell {
  uint8_t top[3];
  uint8_t bottom[3];
};
// `image` scaled to fit `cols` x `rows` cells (two pixel rows a cell, aspect kept for cells twice
// as tall as wide); row-major, its width and height in cells returned through the vector's shape.
std::vector<std::vector<BlockCell>> block_cells(const Image8& image, int cols, int rows);
// The nearest of the 256 xterm colours to an RGB value (for terminals without true colour).
int xterm_256_color(const uint8_t rgb[3]);

}  // namespace df::tui

// The EXIF block (a small TIFF structure) that carries metadata and orientation in JPEG and WebP.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "image/embedded_metadata.h"

namespace df {

// Writes the layout A1111's and ComfyUI's readers look for, big-endian ("MM") like A1111's files:
//  * "parameters" -> Exif IFD UserComment (0x9286): "UNICODE\0" + UTF-16BE, as A1111 writes it;
//  * "prompt"     -> IFD0 Model (0x0110) as "prompt:<value>", as ComfyUI writes it;
//  * every other entry, in order -> IFD0 Make (0x010f), ImageDescription (0x010e), DocumentName
//    (0x010d) as "<key>:<value>"; ComfyUI's "workflow" lands in Make, where its loader looks.
// ASCII tags hold the value's UTF-8 bytes (pure ASCII for JSON dumped with ensure_ascii).
// Returns the TIFF bytes ("MM\0*..." without JPEG's "Exif\0\0" prefix); empty for no metadata.
// Throws Error(kInvalidArgument) for invalid metadata or more than three entries besides
// "parameters" and "prompt".
std::vector<uint8_t> build_exif_block(const EmbeddedMetadata& metadata);

struct ExifContents {
  // "parameters" first (from UserComment) then the "<key>:<value>" tags in the order above.
  EmbeddedMetadata metadata;
  int orientation = 1;  // EXIF Orientation 1..8; 1 when absent or out of range
};

// Reads any EXIF block (optionally preceded by "Exif\0\0"), either byte order. UserComment text:
// UNICODE (UTF-16 by its byte-order mark, else by where its zero bytes fall, else in the block's
// byte order), ASCII, or undefined (read as UTF-8, else Latin-1); a blank comment is no
// "parameters" entry. Only the
// entries it reads are bounds-checked; a broken header or IFD table throws Error(kCorruptFile).
ExifContents parse_exif_block(std::span<const uint8_t> block);

}  // namespace df

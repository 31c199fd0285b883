// Image files of Dream Forge: PNG, JPEG and WebP with embedded generation metadata.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "image/embedded_metadata.h"
#include "image/generation_parameters.h"
#include "image/image8.h"

namespace df {

enum class ImageFormat { kPng, kJpeg, kWebp };

// "png", "jpeg" or "jpg", "webp" (any case); anything else throws Error(kInvalidArgument).
ImageFormat image_format_from_name(const std::string& name);
std::string file_extension(ImageFormat format);  // "png", "jpg", "webp" (no dot)
std::string content_type(ImageFormat format);    // "image/png", "image/jpeg", "image/webp"

// Encodes `image` with `metadata` embedded; `quality` (1..100) applies to JPEG and WebP.
//  * PNG: one tEXt chunk per entry (iTXt when a value has characters beyond Latin-1), before the
//    image data. ComfyUI's loader reads only tEXt: dump the "prompt"/"workflow" JSON with
//    ensure_ascii so it stays ASCII.
//  * JPEG, WebP: an EXIF block: "parameters" in UserComment (UNICODE), "prompt" in Model as
//    "prompt:<json>", further entries ("workflow" first) in Make, ImageDescription, DocumentName as
//    "<key>:<value>" (ComfyUI's WebP layout; see exif_block.h). JPEG drops alpha and holds at most
//    64 KiB of EXIF: larger metadata throws Error(kInvalidArgument).
// Throws Error(kInvalidArgument) for a malformed image or metadata (see EmbeddedMetadata).
std::vector<uint8_t> encode_image(const Image8& image, ImageFormat format,
                                  const EmbeddedMetadata& metadata, int quality = 95);

// Encodes and writes atomically: a temporary file beside `path`, flushed, then renamed over it.
// Throws Error(kIo) when the file cannot be written.
void write_image_file(const std::string& path, const Image8& image, ImageFormat format,
                      const EmbeddedMetadata& metadata);

// Decodes a PNG, JPEG or WebP (detected by its signature) to RGB, or RGBA when the file has
// alpha, turned upright per its EXIF orientation. Throws Error(kCorruptFile) for garbage,
// truncated or damaged files and Error(kUnsupported) for images over 16384 pixels on a side or
// animated WebP.
Image8 decode_image(const std::vector<uint8_t>& bytes);
Image8 read_image_file(const std::string& path);  // Error(kIo) when the file cannot be read

// The metadata embedded in a PNG (tEXt, zTXt, iTXt in file order), JPEG or WebP (EXIF:
// "parameters" from UserComment, then the "<key>:<value>" tags). Errors as decode_image.
EmbeddedMetadata read_embedded_metadata(const std::vector<uint8_t>& bytes);

}  // namespace df

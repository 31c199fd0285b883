// libpng-based PNG codec. libpng reports errors by longjmp; every libpng call runs in run_guarded.
#include "image/png_codec.h"

#include <png.h>

#include <cstring>
#include <memory>
#include <string>

#include "core/error.h"
#include "image/exif_block.h"
#include "image/orientation.h"
#include "image/text_encoding.h"

namespace df {
namespace {

constexpr std::string_view kFormat = "PNG";
constexpr png_alloc_size_t kMaxChunkBytes = 256u << 20;  // room for very large workflow chunks

// Where libpng's error handler leaves its message before jumping back into run_guarded.
struct PngErrorMessage {
  char text[256] = {};
};

void on_png_error(png_structp png, png_const_charp message) {
  auto* error = static_cast<PngErrorMessage*>(png_get_error_ptr(png));
  std::strncpy(error->text, message, sizeof(error->text) - 1);
  png_longjmp(png, 1);
}

void on_png_warning(png_structp, png_const_charp) {}  // benign problems: the image stays usable

// ---- reading ----

struct ReadState {
  std::span<const uint8_t> bytes;
  size_t position = 0;
};

void read_from_memory(png_structp png, png_bytep out, size_t length) {
  auto* state = static_cast<ReadState*>(png_get_io_ptr(png));
  if (length > state->bytes.size() - state->position) png_error(png, "the file ends too early");
  std::memcpy(out, state->bytes.data() + state->position, length);
  state->position += length;
}

struct PngReader {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngReader() { png_destroy_read_struct(&png, &info, nullptr); }
};

// Latin-1 for tEXt/zTXt, UTF-8 for iTXt (Latin-1 fallback for writers that got it wrong).
std::pair<std::string, std::string> text_entry(const png_text& chunk) {
  const bool international = chunk.compression >= PNG_ITXT_COMPRESSION_NONE;
  const std::string_view text(chunk.text, international ? chunk.itxt_length : chunk.text_length);
  return {latin1_to_utf8(chunk.key),
          international ? utf8_or_latin1_to_utf8(text) : latin1_to_utf8(text)};
}

// ---- writing ----

struct WriteState {
  std::vector<uint8_t>* out;
  bool out_of_memory = false;
};

void write_to_memory(png_structp png, png_bytep data, size_t length) {
  auto* state = static_cast<WriteState*>(png_get_io_ptr(png));
  try {
    state->out->insert(state->out->end(), data, data + length);
  } catch (const std::bad_alloc&) {
    state->out_of_memory = true;
  }
  if (state->out_of_memory) png_error(png, "out of memory");
}

void flush_memory(png_structp) {}

struct PngWriter {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngWriter() { png_destroy_write_struct(&png, &info); }
};

// A tEXt chunk when the value is Latin-1, else an iTXt chunk; `storage` keeps the bytes alive.
png_text text_chunk(const std::string& key, const std::string& value, std::string& storage) {
  png_text chunk{};
  chunk.key = const_cast<char*>(key.c_str());
  if (auto latin1 = utf8_to_latin1(value)) {
    storage = std::move(*latin1);
    chunk.compression = PNG_TEXT_COMPRESSION_NONE;
    chunk.text_length = storage.size();
  } else {
    storage = value;
    chunk.compression = PNG_ITXT_COMPRESSION_NONE;
    chunk.itxt_length = storage.size();
  }
  chunk.text = storage.data();
  return chunk;
}

}  // namespace

std::vector<uint8_t> encode_png(const Image8& image, const EmbeddedMetadata& metadata,
                                int compression_level) {
  if (compression_level < 0 || compression_level > 9) {
    throw Error(ErrorCode::kInvalidArgument, "a PNG compression level is 0..9, not " +
                                                 std::to_string(compression_level));
  }
  validate_image(image);
  validate_embedded_metadata(metadata);
  std::vector<std::string> storage(metadata.text.size());
  std::vector<png_text> chunks;
  for (size_t i = 0; i < metadata.text.size(); ++i) {
    chunks.push_back(text_chunk(metadata.text[i].first, metadata.text[i].second, storage[i]));
  }
  std::vector<png_bytep> rows(static_cast<size_t>(image.height));
  const size_t stride = size_t(image.width) * size_t(image.channels);
  for (size_t y = 0; y < rows.size(); ++y)
    rows[y] = const_cast<png_bytep>(&image.pixels[y * stride]);

  std::vector<uint8_t> out;
  WriteState write_state{&out};
  PngErrorMessage error;
  PngWriter writer;
  writer.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &error, on_png_error, on_png_warning);
  if (writer.png) writer.info = png_create_info_struct(writer.png);
  if (!writer.info) throw Error(ErrorCode::kOutOfMemory, "out of memory creating a PNG encoder");

  const bool ok = run_guarded(png_jmpbuf(writer.png), [&] {
    png_set_write_fn(writer.png, &write_state, write_to_memory, flush_memory);
    png_set_compression_level(writer.png, compression_level);
    png_set_IHDR(writer.png, writer.info, png_uint_32(image.width), png_uint_32(image.height), 8,
                 image.channels == 4 ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (!chunks.empty()) png_set_text(writer.png, writer.info, chunks.data(), int(chunks.size()));
    png_write_info(writer.png, writer.info);
    png_write_image(writer.png, rows.data());
    png_write_end(writer.png, nullptr);
  });
  if (write_state.out_of_memory)
    throw Error(ErrorCode::kOutOfMemory, "out of memory encoding a PNG");
  if (!ok) throw Error(ErrorCode::kInternal, std::string("PNG encoding failed: ") + error.text);
  return out;
}

DecodedImage decode_png(std::span<const uint8_t> bytes) {
  PngErrorMessage error;
  PngReader reader;
  reader.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &error, on_png_error, on_png_warning);
  if (reader.png) reader.info = png_create_info_struct(reader.png);
  if (!reader.info) throw Error(ErrorCode::kOutOfMemory, "out of memory creating a PNG decoder");
  ReadState read_state{bytes};

  png_uint_32 width = 0, height = 0;
  int channels = 0;
  bool ok = run_guarded(png_jmpbuf(reader.png), [&] {
    png_set_read_fn(reader.png, &read_state, read_from_memory);
    png_set_chunk_malloc_max(reader.png, kMaxChunkBytes);
    png_read_info(reader.png, reader.info);
    width = png_get_image_width(reader.png, reader.info);
    height = png_get_image_height(reader.png, reader.info);
    const int color_type = png_get_color_type(reader.png, reader.info);
    png_set_expand(reader.png);  // palette -> RGB, low bit depths -> 8, tRNS -> alpha
    png_set_strip_16(reader.png);
    if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) {
      png_set_gray_to_rgb(reader.png);
    }
    png_set_interlace_handling(reader.png);
    png_read_update_info(reader.png, reader.info);
    channels = png_get_channels(reader.png, reader.info);
  });
  if (!ok) throw_corrupt_image(kFormat, error.text);
  check_decoded_size(kFormat, width, height);
  if (channels != 3 && channels != 4) throw_corrupt_image(kFormat, "unexpected channel layout");

  DecodedImage decoded;
  Image8& image = decoded.image;
  image.width = int(width);
  image.height = int(height);
  image.channels = channels;
  image.pixels.resize(size_t(width) * height * size_t(channels));
  std::vector<png_bytep> rows(height);
  for (size_t y = 0; y < height; ++y) rows[y] = &image.pixels[y * size_t(width) * size_t(channels)];
  ok = run_guarded(png_jmpbuf(reader.png), [&] {
    png_read_image(reader.png, rows.data());
    png_read_end(reader.png, reader.info);  // text chunks after the image data join `info`
  });
  if (!ok) throw_corrupt_image(kFormat, error.text);

  png_textp text = nullptr;
  const int text_count = png_get_text(reader.png, reader.info, &text, nullptr);
  for (int i = 0; i < text_count; ++i) decoded.metadata.text.push_back(text_entry(text[i]));

  png_uint_32 exif_size = 0;
  png_bytep exif = nullptr;
  if (png_get_eXIf_1(reader.png, reader.info, &exif_size, &exif) != 0 && exif_size > 0) {
    image =
        apply_exif_orientation(std::move(image), parse_exif_block({exif, exif_size}).orientation);
  }
  return decoded;
}

}  // namespace df

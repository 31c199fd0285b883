// libjpeg-turbo-based JPEG codec. libjpeg reports errors through error_exit, which must not
// return: ours longjmps back into run_guarded.
#include "image/jpeg_codec.h"

// clang-format off
#include <cstdio>  // jpeglib.h needs FILE and size_t first
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#include "image/exif_block.h"

namespace df {
namespace {

constexpr std::string_view kFormat = "JPEG";
constexpr int kMaxJpegSide = 65500;          // libjpeg's limit
constexpr size_t kMaxMarkerPayload = 65533;  // a segment's 16-bit length counts its own 2 bytes
constexpr std::string_view kExifPrefix{"Exif\0\0", 6};

struct JpegErrorManager {
  jpeg_error_mgr base;  // first, so libjpeg's pointer to it is a pointer to the whole
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_jpeg_error(j_common_ptr cinfo) {
  auto* error = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, error->message);
  std::longjmp(error->jump, 1);
}

// libjpeg only warns about truncated or damaged scan data and fills the rest with gray; such a
// file is corrupt for us. Other warnings (stray bytes between segments...) leave a good image.
void on_jpeg_message(j_common_ptr cinfo, int level) {
  const int code = cinfo->err->msg_code;
  if (level < 0 && (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_MUST_RESYNC)) {
    on_jpeg_error(cinfo);
  }
}

void install_error_manager(JpegErrorManager& error, j_common_ptr cinfo) {
  cinfo->err = jpeg_std_error(&error.base);
  error.base.error_exit = on_jpeg_error;
  error.base.emit_message = on_jpeg_message;
  error.message[0] = '\0';
}

struct Decompressor {
  jpeg_decompress_struct cinfo{};
  ~Decompressor() { jpeg_destroy_decompress(&cinfo); }
};

struct Compressor {
  jpeg_compress_struct cinfo{};
  unsigned char* buffer = nullptr;  // malloc'ed by libjpeg's memory destination
  unsigned long size = 0;
  ~Compressor() {
    jpeg_destroy_compress(&cinfo);
    std::free(buffer);
  }
};

// Adobe writes CMYK inverted (0 = full ink); others write it plain.
void cmyk_to_rgb(const std::vector<uint8_t>& cmyk, bool inverted, std::vector<uint8_t>& rgb) {
  rgb.resize(cmyk.size() / 4 * 3);
  for (size_t i = 0, o = 0; i < cmyk.size(); i += 4, o += 3) {
    const int k = inverted ? cmyk[i + 3] : 255 - cmyk[i + 3];
    for (size_t c = 0; c < 3; ++c) {
      const int ink = inverted ? cmyk[i + c] : 255 - cmyk[i + c];
      rgb[o + c] = static_cast<uint8_t>((ink * k + 127) / 255);
    }
  }
}

// The EXIF block from the first APP1 segment that holds one; empty when there is none. Saved
// markers live only until jpeg_finish_decompress: call this before.
std::vector<uint8_t> saved_exif_block(const jpeg_decompress_struct& cinfo) {
  for (jpeg_saved_marker_ptr marker = cinfo.marker_list; marker; marker = marker->next) {
    if (marker->marker == JPEG_APP0 + 1 && marker->data_length >= kExifPrefix.size() &&
        std::memcmp(marker->data, kExifPrefix.data(), kExifPrefix.size()) == 0) {
      return {marker->data + kExifPrefix.size(), marker->data + marker->data_length};
    }
  }
  return {};
}

std::vector<uint8_t> app1_exif_payload(const EmbeddedMetadata& metadata) {
  const std::vector<uint8_t> block = build_exif_block(metadata);
  if (block.empty()) return {};
  std::vector<uint8_t> payload(kExifPrefix.begin(), kExifPrefix.end());
  payload.insert(payload.end(), block.begin(), block.end());
  if (payload.size() > kMaxMarkerPayload) {
    throw Error(ErrorCode::kInvalidArgument,
                "the image metadata takes " + std::to_string(payload.size()) +
                    " bytes of EXIF, more than the 65533 a JPEG can hold; save as PNG or WebP, "
                    "or leave large entries such as the workflow out",
                {{"exif_bytes", payload.size()}});
  }
  return payload;
}

std::vector<uint8_t> rgb_pixels(const Image8& image) {
  if (image.channels == 3) return image.pixels;
  std::vector<uint8_t> rgb(image.pixels.size() / 4 * 3);
  for (size_t i = 0, o = 0; i < image.pixels.size(); i += 4, o += 3) {
    std::copy_n(&image.pixels[i], 3, &rgb[o]);
  }
  return rgb;
}

}  // namespace

std::vector<uint8_t> encode_jpeg(const Image8& image, const EmbeddedMetadata& metadata,
                                 int quality) {
  validate_lossy_encode(kFormat, image, quality, kMaxJpegSide);
  const std::vector<uint8_t> exif = app1_exif_payload(metadata);
  const std::vector<uint8_t> rgb = rgb_pixels(image);
  const size_t stride = size_t(image.width) * 3;

  JpegErrorManager error;
  Compressor compressor;
  jpeg_compress_struct& cinfo = compressor.cinfo;
  install_error_manager(error, reinterpret_cast<j_common_ptr>(&cinfo));
  const bool ok = run_guarded(error.jump, [&] {
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &compressor.buffer, &compressor.size);
    cinfo.image_width = JDIMENSION(image.width);
    cinfo.image_height = JDIMENSION(image.height);
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    cinfo.optimize_coding = TRUE;
    jpeg_start_compress(&cinfo, TRUE);
    if (!exif.empty()) {
      jpeg_write_marker(&cinfo, JPEG_APP0 + 1, exif.data(), static_cast<unsigned int>(exif.size()));
    }
    while (cinfo.next_scanline < cinfo.image_height) {
      JSAMPROW row = const_cast<JSAMPROW>(&rgb[cinfo.next_scanline * stride]);
      jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
  });
  if (!ok) throw Error(ErrorCode::kInternal, std::string("JPEG encoding failed: ") + error.message);
  return std::vector<uint8_t>(compressor.buffer, compressor.buffer + compressor.size);
}

DecodedImage decode_jpeg(std::span<const uint8_t> bytes) {
  JpegErrorManager error;
  Decompressor decompressor;
  jpeg_decompress_struct& cinfo = decompressor.cinfo;
  install_error_manager(error, reinterpret_cast<j_common_ptr>(&cinfo));
  bool ok = run_guarded(error.jump, [&] {
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);
    const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);
  });
  if (!ok) throw_corrupt_image(kFormat, error.message);
  check_decoded_size(kFormat, cinfo.output_width, cinfo.output_height);
  const std::vector<uint8_t> exif = saved_exif_block(cinfo);

  std::vector<uint8_t> samples(size_t(cinfo.output_width) * cinfo.output_height *
                               size_t(cinfo.output_components));
  const size_t stride = size_t(cinfo.output_width) * size_t(cinfo.output_components);
  ok = run_guarded(error.jump, [&] {
    while (cinfo.output_scanline < cinfo.output_height) {
      JSAMPROW row = &samples[cinfo.output_scanline * stride];
      jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
  });
  if (!ok) throw_corrupt_image(kFormat, error.message);

  DecodedImage decoded;
  Image8& image = decoded.image;
  image.width = int(cinfo.output_width);
  image.height = int(cinfo.output_height);
  image.channels = 3;
  if (cinfo.out_color_space == JCS_CMYK) {
    cmyk_to_rgb(samples, cinfo.saw_Adobe_marker, image.pixels);
  } else {
    image.pixels = std::move(samples);
  }
  apply_exif_block(exif, decoded);
  return decoded;
}

}  // namespace df

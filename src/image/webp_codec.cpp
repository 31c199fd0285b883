// libwebp-based WebP codec; the EXIF chunk is added with libwebpmux and read with libwebpdemux.
#include "image/webp_codec.h"

#include <webp/decode.h>
#include <webp/demux.h>
#include <webp/encode.h>
#include <webp/mux.h>

#include <memory>
#include <string>

#include "core/error.h"
#include "image/exif_block.h"

namespace df {
namespace {

constexpr std::string_view kFormat = "WebP";
constexpr int kMaxWebpSide = WEBP_MAX_DIMENSION;

struct WebpBufferDeleter {
  void operator()(uint8_t* data) const { WebPFree(data); }
};
struct MuxDeleter {
  void operator()(WebPMux* mux) const { WebPMuxDelete(mux); }
};
struct DemuxDeleter {
  void operator()(WebPDemuxer* demux) const { WebPDemuxDelete(demux); }
};

std::vector<uint8_t> encode_bitstream(const Image8& image, int quality) {
  uint8_t* encoded = nullptr;
  const int stride = image.width * image.channels;
  const size_t size = image.channels == 4
                          ? WebPEncodeRGBA(image.pixels.data(), image.width, image.height, stride,
                                           float(quality), &encoded)
                          : WebPEncodeRGB(image.pixels.data(), image.width, image.height, stride,
                                          float(quality), &encoded);
  const std::unique_ptr<uint8_t, WebpBufferDeleter> owner(encoded);
  if (size == 0) throw Error(ErrorCode::kInternal, "WebP encoding failed");
  return std::vector<uint8_t>(encoded, encoded + size);
}

// The RIFF container holding `bitstream` and an EXIF chunk.
std::vector<uint8_t> with_exif_chunk(const std::vector<uint8_t>& bitstream,
                                     const std::vector<uint8_t>& exif) {
  const std::unique_ptr<WebPMux, MuxDeleter> mux(WebPMuxNew());
  if (!mux) throw Error(ErrorCode::kOutOfMemory, "out of memory creating a WebP container");
  const WebPData image_data{bitstream.data(), bitstream.size()};
  const WebPData exif_data{exif.data(), exif.size()};
  WebPData assembled{};
  if (WebPMuxSetImage(mux.get(), &image_data, 0) != WEBP_MUX_OK ||
      WebPMuxSetChunk(mux.get(), "EXIF", &exif_data, 0) != WEBP_MUX_OK ||
      WebPMuxAssemble(mux.get(), &assembled) != WEBP_MUX_OK) {
    WebPDataClear(&assembled);
    throw Error(ErrorCode::kInternal, "adding EXIF metadata to a WebP image failed");
  }
  std::vector<uint8_t> out(assembled.bytes, assembled.bytes + assembled.size);
  WebPDataClear(&assembled);
  return out;
}

std::string status_text(VP8StatusCode status) {
  switch (status) {
    case VP8_STATUS_NOT_ENOUGH_DATA:
      return "the file ends too early";
    case VP8_STATUS_BITSTREAM_ERROR:
      return "its bitstream is invalid";
    case VP8_STATUS_UNSUPPORTED_FEATURE:
      return "it uses a feature this decoder lacks";
    default:
      return "it cannot be decoded";
  }
}

// The EXIF chunk's contents; empty when there is none.
std::vector<uint8_t> exif_chunk(std::span<const uint8_t> bytes) {
  const WebPData data{bytes.data(), bytes.size()};
  const std::unique_ptr<WebPDemuxer, DemuxDeleter> demux(WebPDemux(&data));
  if (!demux) throw_corrupt_image(kFormat, "its container is invalid");
  WebPChunkIterator chunk;
  std::vector<uint8_t> exif;
  if (WebPDemuxGetChunk(demux.get(), "EXIF", 1, &chunk)) {
    exif.assign(chunk.chunk.bytes, chunk.chunk.bytes + chunk.chunk.size);
    WebPDemuxReleaseChunkIterator(&chunk);
  }
  return exif;
}

}  // namespace

std::vector<uint8_t> encode_webp(const Image8& image, const EmbeddedMetadata& metadata,
                                 int quality) {
  validate_lossy_encode(kFormat, image, quality, kMaxWebpSide);
  const std::vector<uint8_t> exif = build_exif_block(metadata);
  std::vector<uint8_t> bitstream = encode_bitstream(image, quality);
  if (exif.empty()) return bitstream;
  return with_exif_chunk(bitstream, exif);
}

DecodedImage decode_webp(std::span<const uint8_t> bytes) {
  WebPBitstreamFeatures features;
  const VP8StatusCode status = WebPGetFeatures(bytes.data(), bytes.size(), &features);
  if (status != VP8_STATUS_OK) throw_corrupt_image(kFormat, status_text(status));
  if (features.has_animation)
    throw Error(ErrorCode::kUnsupported, "animated WebP images are not supported");
  check_decoded_size(kFormat, features.width, features.height);

  DecodedImage decoded;
  Image8& image = decoded.image;
  image.width = features.width;
  image.height = features.height;
  image.channels = features.has_alpha ? 4 : 3;
  image.pixels.resize(size_t(image.width) * size_t(image.height) * size_t(image.channels));
  const int stride = image.width * image.channels;
  const uint8_t* decoded_pixels =
      image.channels == 4 ? WebPDecodeRGBAInto(bytes.data(), bytes.size(), image.pixels.data(),
                                               image.pixels.size(), stride)
                          : WebPDecodeRGBInto(bytes.data(), bytes.size(), image.pixels.data(),
                                              image.pixels.size(), stride);
  if (!decoded_pixels) throw_corrupt_image(kFormat, "its image data cannot be decoded");

  const std::vector<uint8_t> exif = exif_chunk(bytes);
  apply_exif_block(exif, decoded);
  return decoded;
}

}  // namespace df

// Animated WebP encoding with WebPAnimEncoder; the EXIF chunk is added with WebPMux.
#include "image/webp_animation.h"

#include <webp/encode.h>
#include <webp/mux.h>

#include <cmath>
#include <memory>
#include <string>

#include "core/error.h"
#include "image/codec_support.h"
#include "image/exif_block.h"

namespace df {
namespace {

struct AnimEncoderDeleter {
  void operator()(WebPAnimEncoder* encoder) const { WebPAnimEncoderDelete(encoder); }
};
struct MuxDeleter {
  void operator()(WebPMux* mux) const { WebPMuxDelete(mux); }
};
// Frees the pixel buffers a WebPPicture owns (not the struct itself).
struct PictureDeleter {
  void operator()(WebPPicture* picture) const { WebPPictureFree(picture); }
};

// Owns the bytes of a WebPData and copies them out.
class OwnedWebpData {
 public:
  OwnedWebpData() { WebPDataInit(&data_); }
  ~OwnedWebpData() { WebPDataClear(&data_); }
  OwnedWebpData(const OwnedWebpData&) = delete;
  OwnedWebpData& operator=(const OwnedWebpData&) = delete;
  WebPData* get() { return &data_; }
  std::vector<uint8_t> bytes() const { return {data_.bytes, data_.bytes + data_.size}; }

 private:
  WebPData data_;
};

[[noreturn]] void invalid(const std::string& what) {
  throw Error(ErrorCode::kInvalidArgument, "animated WebP: " + what);
}

// int(1000 / fps) like ComfyUI; refuses rates whose frames would last no whole millisecond.
int frame_duration_ms(double fps) {
  if (!std::isfinite(fps) || fps <= 0.0) invalid("fps must be a positive number");
  const double duration = std::trunc(1000.0 / fps);
  if (duration < 1.0) invalid("fps must be at most 1000");
  if (duration > 1e9) invalid("fps is too small");
  return static_cast<int>(duration);
}

void validate_frames(std::span<const Image8> frames) {
  if (frames.empty()) invalid("there are no frames");
  for (const Image8& frame : frames) {
    validate_image(frame);
    if (frame.width != frames[0].width || frame.height != frames[0].height) {
      invalid("every frame must be " + std::to_string(frames[0].width) + "x" +
              std::to_string(frames[0].height) + " like the first");
    }
  }
  if (frames[0].width > WEBP_MAX_DIMENSION || frames[0].height > WEBP_MAX_DIMENSION) {
    invalid("frames are larger than " + std::to_string(WEBP_MAX_DIMENSION) + " pixels on a side");
  }
}

WebPConfig frame_config(const WebpAnimationOptions& options) {
  if (options.quality < 0 || options.quality > 100) invalid("quality must be 0..100");
  if (options.method < 0 || options.method > 6) invalid("method must be 0..6");
  WebPConfig config;
  if (!WebPConfigInit(&config)) throw Error(ErrorCode::kInternal, "libwebp version mismatch");
  config.lossless = options.lossless ? 1 : 0;
  config.quality = static_cast<float>(options.quality);
  config.method = options.method;
  if (!WebPValidateConfig(&config)) invalid("the encoder settings are invalid");
  return config;
}

std::unique_ptr<WebPAnimEncoder, AnimEncoderDeleter> new_encoder(int width, int height,
                                                                 bool lossless) {
  WebPAnimEncoderOptions options;
  if (!WebPAnimEncoderOptionsInit(&options)) {
    throw Error(ErrorCode::kInternal, "libwebp version mismatch");
  }
  options.anim_params.loop_count = 0;
  options.anim_params.bgcolor = 0;
  options.minimize_size = 0;
  options.allow_mixed = 0;
  options.kmin = lossless ? 9 : 3;
  options.kmax = lossless ? 17 : 5;
  std::unique_ptr<WebPAnimEncoder, AnimEncoderDeleter> encoder(
      WebPAnimEncoderNew(width, height, &options));
  if (!encoder) throw Error(ErrorCode::kOutOfMemory, "out of memory creating a WebP animation");
  return encoder;
}

void add_frame(WebPAnimEncoder* encoder, const Image8& frame, int timestamp_ms,
               const WebPConfig& config) {
  WebPPicture picture;
  if (!WebPPictureInit(&picture)) throw Error(ErrorCode::kInternal, "libwebp version mismatch");
  picture.width = frame.width;
  picture.height = frame.height;
  picture.use_argb = 1;
  const std::unique_ptr<WebPPicture, PictureDeleter> owner(&picture);
  const int stride = frame.width * frame.channels;
  const int imported = frame.channels == 4
                           ? WebPPictureImportRGBA(&picture, frame.pixels.data(), stride)
                           : WebPPictureImportRGB(&picture, frame.pixels.data(), stride);
  if (!imported) throw Error(ErrorCode::kOutOfMemory, "out of memory importing a WebP frame");
  if (!WebPAnimEncoderAdd(encoder, &picture, timestamp_ms, &config)) {
    throw Error(ErrorCode::kInternal,
                std::string("WebP animation encoding failed: ") + WebPAnimEncoderGetError(encoder));
  }
}

std::vector<uint8_t> with_exif_chunk(const std::vector<uint8_t>& animation,
                                     const std::vector<uint8_t>& exif) {
  const WebPData animation_data{animation.data(), animation.size()};
  const std::unique_ptr<WebPMux, MuxDeleter> mux(WebPMuxCreate(&animation_data, 1));
  if (!mux) throw Error(ErrorCode::kInternal, "the encoded WebP animation could not be re-read");
  const WebPData exif_data{exif.data(), exif.size()};
  OwnedWebpData assembled;
  if (WebPMuxSetChunk(mux.get(), "EXIF", &exif_data, 1) != WEBP_MUX_OK ||
      WebPMuxAssemble(mux.get(), assembled.get()) != WEBP_MUX_OK) {
    throw Error(ErrorCode::kInternal, "adding EXIF metadata to a WebP animation failed");
  }
  return assembled.bytes();
}

}  // namespace

std::vector<uint8_t> encode_animated_webp(std::span<const Image8> frames,
                                          const WebpAnimationOptions& options,
                                          const EmbeddedMetadata& metadata) {
  validate_frames(frames);
  const int duration = frame_duration_ms(options.fps);
  if (static_cast<double>(duration) * static_cast<double>(frames.size()) > 2147483647.0) {
    invalid("the animation would last longer than 24 days");
  }
  const WebPConfig config = frame_config(options);
  const std::vector<uint8_t> exif = build_exif_block(metadata);
  auto encoder = new_encoder(frames[0].width, frames[0].height, options.lossless);
  int timestamp = 0;
  for (const Image8& frame : frames) {
    add_frame(encoder.get(), frame, timestamp, config);
    timestamp += duration;
  }
  OwnedWebpData animation;
  if (!WebPAnimEncoderAdd(encoder.get(), nullptr, timestamp, nullptr) ||
      !WebPAnimEncoderAssemble(encoder.get(), animation.get())) {
    throw Error(ErrorCode::kInternal, std::string("WebP animation encoding failed: ") +
                                          WebPAnimEncoderGetError(encoder.get()));
  }
  if (exif.empty()) return animation.bytes();
  return with_exif_chunk(animation.bytes(), exif);
}

}  // namespace df

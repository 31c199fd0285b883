// Unit tests for animated WebP encoding: frames, timing, lossless pixels and EXIF metadata.
#include <gtest/gtest.h>

#include <webp/demux.h>

#include <memory>
#include <vector>

#include "image/exif_block.h"
#include "image/webp_animation.h"
#include "test_image_support.h"

namespace df {
namespace {

using image_test::error_code_of;
using image_test::noise_image;

struct DemuxDeleter {
  void operator()(WebPDemuxer* demux) const { WebPDemuxDelete(demux); }
};
struct AnimDecoderDeleter {
  void operator()(WebPAnimDecoder* decoder) const { WebPAnimDecoderDelete(decoder); }
};

std::unique_ptr<WebPDemuxer, DemuxDeleter> demux_of(const std::vector<uint8_t>& bytes) {
  const WebPData data{bytes.data(), bytes.size()};
  return std::unique_ptr<WebPDemuxer, DemuxDeleter>(WebPDemux(&data));
}

// Every frame of the animation as RGBA, composited as a viewer shows it.
std::vector<std::vector<uint8_t>> decoded_frames(const std::vector<uint8_t>& bytes) {
  const WebPData data{bytes.data(), bytes.size()};
  WebPAnimDecoderOptions options;
  WebPAnimDecoderOptionsInit(&options);
  options.color_mode = MODE_RGBA;
  std::unique_ptr<WebPAnimDecoder, AnimDecoderDeleter> decoder(WebPAnimDecoderNew(&data, &options));
  EXPECT_NE(decoder, nullptr);
  std::vector<std::vector<uint8_t>> frames;
  if (!decoder) return frames;
  WebPAnimInfo info;
  WebPAnimDecoderGetInfo(decoder.get(), &info);
  const size_t frame_bytes = size_t(info.canvas_width) * info.canvas_height * 4;
  while (WebPAnimDecoderHasMoreFrames(decoder.get())) {
    uint8_t* rgba = nullptr;
    int timestamp = 0;
    if (!WebPAnimDecoderGetNext(decoder.get(), &rgba, &timestamp)) break;
    frames.emplace_back(rgba, rgba + frame_bytes);
  }
  return frames;
}

std::vector<Image8> three_frames(int width, int height) {
  return {noise_image(width, height, 3, 1), noise_image(width, height, 3, 2),
          noise_image(width, height, 3, 3)};
}

TEST(WebpAnimation, HasEveryFrameAtTheCanvasSize) {
  const auto frames = three_frames(40, 24);
  const auto bytes = encode_animated_webp(frames, {}, {});
  auto demux = demux_of(bytes);
  ASSERT_NE(demux, nullptr);
  EXPECT_EQ(WebPDemuxGetI(demux.get(), WEBP_FF_FRAME_COUNT), 3u);
  EXPECT_EQ(WebPDemuxGetI(demux.get(), WEBP_FF_CANVAS_WIDTH), 40u);
  EXPECT_EQ(WebPDemuxGetI(demux.get(), WEBP_FF_CANVAS_HEIGHT), 24u);
  EXPECT_NE(WebPDemuxGetI(demux.get(), WEBP_FF_FORMAT_FLAGS) & ANIMATION_FLAG, 0u);
  EXPECT_EQ(WebPDemuxGetI(demux.get(), WEBP_FF_LOOP_COUNT), 0u);
}

TEST(WebpAnimation, FramesLastTheTruncatedPeriodOfTheFrameRate) {
  WebpAnimationOptions options;
  options.fps = 6.0;  // int(1000 / 6) = 166 ms, as ComfyUI computes it
  const auto bytes = encode_animated_webp(three_frames(16, 16), options, {});
  auto demux = demux_of(bytes);
  ASSERT_NE(demux, nullptr);
  WebPIterator frame;
  ASSERT_TRUE(WebPDemuxGetFrame(demux.get(), 1, &frame));
  int count = 0;
  do {
    EXPECT_EQ(frame.duration, 166) << "frame " << count;
    ++count;
  } while (WebPDemuxNextFrame(&frame));
  WebPDemuxReleaseIterator(&frame);
  EXPECT_EQ(count, 3);
}

TEST(WebpAnimation, LosslessKeepsEveryPixel) {
  const auto frames = three_frames(20, 12);
  const auto decoded = decoded_frames(encode_animated_webp(frames, {}, {}));
  ASSERT_EQ(decoded.size(), frames.size());
  for (size_t f = 0; f < frames.size(); ++f) {
    for (size_t p = 0; p < size_t(20 * 12); ++p) {
      for (size_t c = 0; c < 3; ++c) {
        ASSERT_EQ(decoded[f][p * 4 + c], frames[f].pixels[p * 3 + c]) << "frame " << f;
      }
      ASSERT_EQ(decoded[f][p * 4 + 3], 255);
    }
  }
}

TEST(WebpAnimation, LossyFramesStayClose) {
  WebpAnimationOptions options;
  options.lossless = false;
  options.quality = 90;
  // Distinct frames: libwebp (and so ComfyUI's files) merges identical neighbours into one.
  const Image8 smooth = image_test::gradient_image(64, 48, 3);
  Image8 brighter = smooth;
  for (auto& byte : brighter.pixels) byte = static_cast<uint8_t>(byte / 2 + 100);
  const std::vector<Image8> frames = {smooth, brighter};
  const auto decoded = decoded_frames(encode_animated_webp(frames, options, {}));
  ASSERT_EQ(decoded.size(), 2u);
  for (size_t f = 0; f < 2; ++f) {
    Image8 rgb{64, 48, 3, {}};
    for (size_t p = 0; p < size_t(64 * 48); ++p) {
      for (size_t c = 0; c < 3; ++c) rgb.pixels.push_back(decoded[f][p * 4 + c]);
    }
    EXPECT_LT(image_test::mean_abs_difference(rgb, frames[f]), 6.0) << "frame " << f;
  }
}

TEST(WebpAnimation, CarriesComfyUIMetadataInExif) {
  EmbeddedMetadata metadata;
  metadata.text = {{"prompt", R"({"1":{"class_type":"SaveAnimatedWEBP"}})"},
                   {"workflow", R"({"nodes":[]})"}};
  const auto bytes = encode_animated_webp(three_frames(8, 8), {}, metadata);
  auto demux = demux_of(bytes);
  ASSERT_NE(demux, nullptr);
  EXPECT_EQ(WebPDemuxGetI(demux.get(), WEBP_FF_FRAME_COUNT), 3u);
  WebPChunkIterator chunk;
  ASSERT_TRUE(WebPDemuxGetChunk(demux.get(), "EXIF", 1, &chunk));
  const ExifContents exif =
      parse_exif_block(std::span<const uint8_t>(chunk.chunk.bytes, chunk.chunk.size));
  WebPDemuxReleaseChunkIterator(&chunk);
  ASSERT_NE(exif.metadata.find("prompt"), nullptr);
  EXPECT_EQ(*exif.metadata.find("prompt"), metadata.text[0].second);
  ASSERT_NE(exif.metadata.find("workflow"), nullptr);
  EXPECT_EQ(*exif.metadata.find("workflow"), metadata.text[1].second);
}

TEST(WebpAnimation, OneFrameIsStillAnAnimation) {
  const std::vector<Image8> frames = {noise_image(8, 8, 4)};
  auto demux = demux_of(encode_animated_webp(frames, {}, {}));
  ASSERT_NE(demux, nullptr);
  EXPECT_EQ(WebPDemuxGetI(demux.get(), WEBP_FF_FRAME_COUNT), 1u);
}

TEST(WebpAnimation, RefusesBadInput) {
  const std::vector<Image8> none;
  EXPECT_EQ(error_code_of([&] { encode_animated_webp(none, {}, {}); }),
            ErrorCode::kInvalidArgument);
  const std::vector<Image8> mixed = {noise_image(8, 8, 3), noise_image(8, 9, 3)};
  EXPECT_EQ(error_code_of([&] { encode_animated_webp(mixed, {}, {}); }),
            ErrorCode::kInvalidArgument);
  const auto frames = three_frames(8, 8);
  for (WebpAnimationOptions bad : {WebpAnimationOptions{0.0}, WebpAnimationOptions{5000.0},
                                   WebpAnimationOptions{6.0, true, 101},
                                   WebpAnimationOptions{6.0, true, 80, 7}}) {
    EXPECT_EQ(error_code_of([&] { encode_animated_webp(frames, bad, {}); }),
              ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace df

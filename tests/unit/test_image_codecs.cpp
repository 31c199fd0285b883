// Unit tests for PNG/JPEG/WebP encoding and decoding with embedded metadata, and bad input.
#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "image/image.h"
#include "image/orientation.h"
#include "test_image_support.h"

namespace df {
namespace {

using image_test::error_code_of;
using image_test::gradient_image;
using image_test::mean_abs_difference;
using image_test::noise_image;
using image_test::unicode_parameters;

// About 100 KB of ASCII JSON in the shape of a ComfyUI UI workflow.
std::string large_workflow_json() {
  std::string json = R"({"last_node_id":2000,"nodes":[)";
  for (int i = 0; json.size() < 100 * 1024; ++i) {
    if (i > 0) json += ',';
    json += R"({"id":)" + std::to_string(i) +
            R"(,"type":"KSampler","pos":[120,340],"title":"\u685c node","widgets_values":[)" +
            std::to_string(1000003 * i) + R"(,"randomize",20,8,"euler","normal",1]})";
  }
  return json + "]}";
}

EmbeddedMetadata generation_metadata(const std::string& workflow) {
  EmbeddedMetadata metadata;
  metadata.text = {
      {"parameters", format_a1111_parameters(unicode_parameters())},
      {"prompt",
       R"({"3":{"inputs":{"seed":156680208700286,"text":"\u685c"},"class_type":"KSampler"}})"},
      {"workflow", workflow}};
  return metadata;
}

bool contains(const std::vector<uint8_t>& bytes, std::string_view needle) {
  const std::vector<uint8_t> pattern(needle.begin(), needle.end());
  return std::search(bytes.begin(), bytes.end(), pattern.begin(), pattern.end()) != bytes.end();
}

TEST(ImageFormats, NamesExtensionsAndContentTypes) {
  EXPECT_EQ(image_format_from_name("png"), ImageFormat::kPng);
  EXPECT_EQ(image_format_from_name("JPEG"), ImageFormat::kJpeg);
  EXPECT_EQ(image_format_from_name("jpg"), ImageFormat::kJpeg);
  EXPECT_EQ(image_format_from_name("webp"), ImageFormat::kWebp);
  EXPECT_EQ(error_code_of([] { image_format_from_name("gif"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(file_extension(ImageFormat::kPng), "png");
  EXPECT_EQ(file_extension(ImageFormat::kJpeg), "jpg");
  EXPECT_EQ(file_extension(ImageFormat::kWebp), "webp");
  EXPECT_EQ(content_type(ImageFormat::kPng), "image/png");
  EXPECT_EQ(content_type(ImageFormat::kJpeg), "image/jpeg");
  EXPECT_EQ(content_type(ImageFormat::kWebp), "image/webp");
}

TEST(ImagePng, RoundTripsPixelsExactlyAndAllMetadata) {
  const EmbeddedMetadata metadata = generation_metadata(large_workflow_json());
  for (int channels : {3, 4}) {
    const Image8 image = noise_image(37, 23, channels);
    const std::vector<uint8_t> png = encode_image(image, ImageFormat::kPng, metadata);
    const Image8 decoded = decode_image(png);
    EXPECT_EQ(decoded.width, 37);
    EXPECT_EQ(decoded.height, 23);
    EXPECT_EQ(decoded.channels, channels);
    EXPECT_EQ(decoded.pixels, image.pixels);
    EXPECT_EQ(read_embedded_metadata(png).text, metadata.text);
  }
}

TEST(ImagePng, WritesTextChunksAndItxtOnlyBeyondLatin1) {
  EmbeddedMetadata metadata;
  metadata.text = {{"prompt", "{\"a\":1}"}, {"latin", "café"}, {"parameters", "桜"}};
  const std::vector<uint8_t> png =
      encode_image(gradient_image(8, 8, 3), ImageFormat::kPng, metadata);
  EXPECT_TRUE(contains(png, std::string_view("tEXtprompt\0{\"a\":1}", 18)));
  EXPECT_TRUE(contains(png, std::string_view("tEXtlatin\0caf\xE9", 14)));
  EXPECT_TRUE(contains(png, "iTXtparameters"));
  EXPECT_EQ(read_embedded_metadata(png).text, metadata.text);
}

TEST(ImageJpeg, RoundTripsCloselyWithMetadata) {
  const EmbeddedMetadata metadata = generation_metadata(R"({"nodes":[{"id":1}]})");
  for (int channels : {3, 4}) {
    const Image8 image = gradient_image(64, 48, channels);
    const std::vector<uint8_t> jpeg = encode_image(image, ImageFormat::kJpeg, metadata, 95);
    const Image8 decoded = decode_image(jpeg);
    EXPECT_EQ(decoded.width, 64);
    EXPECT_EQ(decoded.height, 48);
    ASSERT_EQ(decoded.channels, 3);  // JPEG has no alpha
    const Image8 rgb = gradient_image(64, 48, 3);
    EXPECT_LT(mean_abs_difference(decoded, rgb), 2.0);
    EXPECT_EQ(read_embedded_metadata(jpeg).text, metadata.text);
  }
}

TEST(ImageJpeg, MetadataOverTheExifLimitIsRefusedClearly) {
  const EmbeddedMetadata metadata = generation_metadata(large_workflow_json());
  try {
    encode_image(gradient_image(16, 16, 3), ImageFormat::kJpeg, metadata);
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(error.what()).find("PNG or WebP"), std::string::npos);
  }
}

TEST(ImageJpeg, AppliesExifOrientation) {
  const Image8 image = gradient_image(40, 20, 3);
  const std::vector<uint8_t> plain = encode_image(image, ImageFormat::kJpeg, {});
  // APP1 "Exif\0\0" + big-endian TIFF with IFD0 { Orientation = 6 }, spliced in after SOI.
  const std::vector<uint8_t> app1 = {0xFF, 0xE1, 0, 34, 'E', 'x', 'i', 'f', 0,    0,    'M', 'M',
                                     0,    42,   0, 0,  0,   8,   0,   1,   0x01, 0x12, 0,   3,
                                     0,    0,    0, 1,  0,   6,   0,   0,   0,    0,    0,   0};
  std::vector<uint8_t> rotated(plain.begin(), plain.begin() + 2);
  rotated.insert(rotated.end(), app1.begin(), app1.end());
  rotated.insert(rotated.end(), plain.begin() + 2, plain.end());
  const Image8 upright = decode_image(rotated);
  EXPECT_EQ(upright.width, 20);
  EXPECT_EQ(upright.height, 40);
  EXPECT_EQ(upright.pixels, apply_exif_orientation(decode_image(plain), 6).pixels);
}

TEST(ImageWebp, RoundTripsCloselyWithLargeMetadata) {
  const EmbeddedMetadata metadata = generation_metadata(large_workflow_json());
  for (int channels : {3, 4}) {
    const Image8 image = gradient_image(64, 48, channels);
    const std::vector<uint8_t> webp = encode_image(image, ImageFormat::kWebp, metadata, 95);
    const Image8 decoded = decode_image(webp);
    EXPECT_EQ(decoded.width, 64);
    EXPECT_EQ(decoded.height, 48);
    EXPECT_EQ(decoded.channels, channels);
    EXPECT_LT(mean_abs_difference(decoded, image), 3.0);
    EXPECT_EQ(read_embedded_metadata(webp).text, metadata.text);
  }
}

TEST(ImageWebp, WithoutMetadataIsAPlainWebp) {
  const std::vector<uint8_t> webp = encode_image(gradient_image(16, 16, 3), ImageFormat::kWebp, {});
  EXPECT_FALSE(contains(webp, "EXIF"));
  EXPECT_TRUE(read_embedded_metadata(webp).text.empty());
}

// A PNG written by libpng's simplified API in `format` (gray, 16-bit, palette...).
std::vector<uint8_t> simplified_png(uint32_t format, int width, int height, const void* pixels,
                                    const void* colormap = nullptr, int colormap_entries = 0) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = png_uint_32(width);
  image.height = png_uint_32(height);
  image.format = format;
  image.colormap_entries = png_uint_32(colormap_entries);
  png_alloc_size_t size = 0;
  EXPECT_TRUE(png_image_write_to_memory(&image, nullptr, &size, 0, pixels, 0, colormap));
  std::vector<uint8_t> out(size);
  EXPECT_TRUE(png_image_write_to_memory(&image, out.data(), &size, 0, pixels, 0, colormap));
  out.resize(size);
  return out;
}

TEST(ImagePng, DecodesGrayAlphaSixteenBitAndPaletteFiles) {
  const std::vector<uint8_t> gray = {0, 100, 200, 255};
  Image8 decoded = decode_image(simplified_png(PNG_FORMAT_GRAY, 2, 2, gray.data()));
  EXPECT_EQ(decoded.channels, 3);
  EXPECT_EQ(decoded.pixels,
            (std::vector<uint8_t>{0, 0, 0, 100, 100, 100, 200, 200, 200, 255, 255, 255}));

  const std::vector<uint8_t> gray_alpha = {10, 255, 20, 0};
  decoded = decode_image(simplified_png(PNG_FORMAT_GA, 2, 1, gray_alpha.data()));
  EXPECT_EQ(decoded.channels, 4);
  EXPECT_EQ(decoded.pixels, (std::vector<uint8_t>{10, 10, 10, 255, 20, 20, 20, 0}));

  const std::vector<uint16_t> deep = {0x1234, 0xABCD, 0xFFFF, 0x00FF, 0x8000, 0x7FFF};
  decoded = decode_image(simplified_png(PNG_FORMAT_LINEAR_RGB, 2, 1, deep.data()));
  EXPECT_EQ(decoded.channels, 3);
  EXPECT_EQ(decoded.pixels,
            (std::vector<uint8_t>{0x12, 0xAB, 0xFF, 0x00, 0x80, 0x7F}));  // high bytes

  const std::vector<uint8_t> palette = {255, 0, 0, 255, 0, 0, 255, 128};  // RGBA entries
  const std::vector<uint8_t> indices = {0, 1, 1, 0};
  decoded = decode_image(
      simplified_png(PNG_FORMAT_RGBA_COLORMAP, 2, 2, indices.data(), palette.data(), 2));
  EXPECT_EQ(decoded.channels, 4);
  EXPECT_EQ(decoded.pixels,
            (std::vector<uint8_t>{255, 0, 0, 255, 0, 0, 255, 128, 0, 0, 255, 128, 255, 0, 0, 255}));
}

std::vector<std::vector<uint8_t>> encoded_samples() {
  const EmbeddedMetadata metadata = generation_metadata(R"({"nodes":[]})");
  std::vector<std::vector<uint8_t>> samples;
  for (ImageFormat format : {ImageFormat::kPng, ImageFormat::kJpeg, ImageFormat::kWebp}) {
    samples.push_back(encode_image(gradient_image(32, 24, 3), format, metadata));
    samples.push_back(encode_image(gradient_image(32, 24, 4), format, {}));
  }
  return samples;
}

TEST(ImageDecode, GarbageIsACorruptFile) {
  const std::vector<std::vector<uint8_t>> garbage = {
      {},
      {'h', 'e', 'l', 'l', 'o'},
      {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 1, 2, 3, 4, 5, 6, 7, 8, 9},
      {0xFF, 0xD8, 0xFF, 0xE0, 0, 0, 0, 0},
      {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', ' ', 1, 2},
      noise_image(64, 64, 3).pixels,
  };
  for (const auto& bytes : garbage) {
    EXPECT_EQ(error_code_of([&] { decode_image(bytes); }), ErrorCode::kCorruptFile);
    EXPECT_EQ(error_code_of([&] { read_embedded_metadata(bytes); }), ErrorCode::kCorruptFile);
  }
}

TEST(ImageDecode, TruncatedFilesAreCorrupt) {
  for (const auto& sample : encoded_samples()) {
    const size_t n = sample.size();
    for (size_t size : {size_t{1}, size_t{8}, size_t{20}, n / 4, n / 2, 3 * n / 4, n - 10, n - 1}) {
      const std::vector<uint8_t> truncated(sample.begin(), sample.begin() + std::ptrdiff_t(size));
      EXPECT_EQ(error_code_of([&] { decode_image(truncated); }), ErrorCode::kCorruptFile)
          << "size " << size << " of " << n;
    }
  }
}

TEST(ImageDecode, DamagedFilesNeverCrash) {
  uint32_t state = 12345;
  for (const auto& sample : encoded_samples()) {
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<uint8_t> damaged = sample;
      for (int flip = 0; flip < 1 + trial % 4; ++flip) {
        state = state * 1664525u + 1013904223u;
        damaged[(state >> 8) % damaged.size()] ^= static_cast<uint8_t>(1 + (state >> 24) % 255);
      }
      try {
        const Image8 image = decode_image(damaged);
        EXPECT_EQ(image.pixels.size(),
                  size_t(image.width) * size_t(image.height) * size_t(image.channels));
        read_embedded_metadata(damaged);
      } catch (const Error&) {
        // A damaged file may decode or be refused; it must not crash or throw anything else.
      }
    }
  }
}

TEST(ImageEncode, RejectsMalformedImagesAndMetadata) {
  const Image8 good = gradient_image(8, 8, 3);
  Image8 two_channels{8, 8, 2, std::vector<uint8_t>(128)};
  Image8 short_buffer{8, 8, 3, std::vector<uint8_t>(100)};
  Image8 empty{0, 8, 3, {}};
  for (ImageFormat format : {ImageFormat::kPng, ImageFormat::kJpeg, ImageFormat::kWebp}) {
    for (const Image8* bad : {&two_channels, &short_buffer, &empty}) {
      EXPECT_EQ(error_code_of([&] { encode_image(*bad, format, {}); }),
                ErrorCode::kInvalidArgument);
    }
    const std::vector<EmbeddedMetadata> bad_metadata = {
        {{{"", "x"}}},
        {{{"has space", "x"}}},
        {{{"prompt", "a"}, {"prompt", "b"}}},
        {{{"parameters", std::string("nul\0inside", 10)}}},
        {{{"parameters", "bad utf-8 \xC3"}}},
    };
    for (const auto& metadata : bad_metadata) {
      EXPECT_EQ(error_code_of([&] { encode_image(good, format, metadata); }),
                ErrorCode::kInvalidArgument);
    }
  }
  EXPECT_EQ(error_code_of([&] { encode_image(good, ImageFormat::kJpeg, {}, 0); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { encode_image(good, ImageFormat::kWebp, {}, 101); }),
            ErrorCode::kInvalidArgument);
}

TEST(ImageEncode, RejectsImagesWiderThanTheFormatAllows) {
  const std::pair<ImageFormat, int> limits[] = {{ImageFormat::kJpeg, 65500},
                                                {ImageFormat::kWebp, 16383}};
  for (const auto& [format, max_side] : limits) {
    const Image8 too_wide{max_side + 1, 1, 3, std::vector<uint8_t>(size_t(max_side + 1) * 3)};
    try {
      encode_image(too_wide, format, {});
      ADD_FAILURE() << "no error for width " << too_wide.width;
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(error.what()).find(std::to_string(max_side) + " pixels on a side"),
                std::string::npos)
          << error.what();
    }
  }
}

class ImageFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("df_image_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(ImageFiles, WritesAtomicallyAndReadsBack) {
  const Image8 image = noise_image(20, 10, 4);
  const EmbeddedMetadata metadata = generation_metadata("{}");
  const std::string path = (dir_ / "out.png").string();
  write_image_file(path, image, ImageFormat::kPng, metadata);
  write_image_file(path, image, ImageFormat::kPng, metadata);  // replaces the file in place
  EXPECT_EQ(read_image_file(path).pixels, image.pixels);
  size_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir_)) ++files;
  EXPECT_EQ(files, 1u);  // no temporary file left behind
  std::ifstream file(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(file)),
                                   std::istreambuf_iterator<char>());
  EXPECT_EQ(read_embedded_metadata(bytes).text, metadata.text);
}

TEST_F(ImageFiles, FilesystemFailuresAreIoErrors) {
  const Image8 image = gradient_image(8, 8, 3);
  EXPECT_EQ(error_code_of([&] {
              write_image_file((dir_ / "missing" / "x.png").string(), image, ImageFormat::kPng, {});
            }),
            ErrorCode::kIo);
  EXPECT_EQ(error_code_of([&] { read_image_file((dir_ / "absent.png").string()); }),
            ErrorCode::kIo);
}

}  // namespace
}  // namespace df

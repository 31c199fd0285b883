// Tests of the mask upload: the original's reference, combining its pixels with the mask's alpha,
// and the stored PNG that keeps the original's metadata.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "api/comfy_masks.h"
#include "core/error.h"
#include "core/files.h"
#include "image/image.h"
#include "test_support.h"

namespace df::api {
namespace {

namespace fs = std::filesystem;

Image8 solid(int width, int height, int channels, std::vector<uint8_t> pixel) {
  Image8 image{width, height, channels, {}};
  for (int i = 0; i < width * height; ++i) {
    image.pixels.insert(image.pixels.end(), pixel.begin(), pixel.end());
  }
  return image;
}

std::string png_text(const Image8& image, const EmbeddedMetadata& metadata = {}) {
  const std::vector<uint8_t> bytes = encode_image(image, ImageFormat::kPng, metadata);
  return {bytes.begin(), bytes.end()};
}

// A multipart/form-data request with the mask file and the other fields.
http::Request mask_request(const std::string& mask_png,
                           const std::vector<std::pair<std::string, std::string>>& fields) {
  const std::string boundary = "dfboundary42";
  std::string body = "--" + boundary +
                     "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"mask.png\""
                     "\r\nContent-Type: image/png\r\n\r\n" +
                     mask_png + "\r\n";
  for (const auto& [name, value] : fields) {
    body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" +
            value + "\r\n";
  }
  body += "--" + boundary + "--\r\n";
  http::Request request;
  request.method = "POST";
  request.headers = {{"Content-Type", "multipart/form-data; boundary=" + boundary}};
  request.body = body;
  return request;
}

class ComfyMasksTest : public ::testing::Test {
 protected:
  ComfyMasksTest() : dir_("df_comfy_masks_") {
    folders_ = {dir_.path() / "input", dir_.path() / "output", dir_.path() / "temp"};
    fs::create_directories(folders_.input / "clipspace");
    fs::create_directories(folders_.output / "shots");
    fs::create_directories(folders_.temp);
  }
  void put(const fs::path& file, const std::string& bytes) {
    write_file_atomically(file.string(), std::vector<uint8_t>(bytes.begin(), bytes.end()));
  }

  test::TestDir dir_;
  ComfyFolders folders_;
};

TEST(ComfyMaskRef, ParsesTheOriginalRef) {
  const ImageRef ref =
      parse_image_ref(R"({"filename": "a.png", "subfolder": "clipspace", "type": "input"})");
  EXPECT_EQ(ref.filename, "a.png");
  EXPECT_EQ(ref.subfolder, "clipspace");
  EXPECT_EQ(ref.type, "input");
  const ImageRef plain = parse_image_ref(R"({"filename": "b.png"})");
  EXPECT_EQ(plain.subfolder, "");
  EXPECT_EQ(plain.type, "output");  // ComfyUI's default for the original
  for (const char* bad : {"", "not json", "[]", "{}", R"({"filename": 3})",
                          R"({"filename": "a.png", "type": null})"}) {
    EXPECT_EQ(test::error_code_of([&] { parse_image_ref(bad); }), ErrorCode::kBadRequest) << bad;
  }
}

TEST_F(ComfyMasksTest, FindsTheOriginalByTypeSubfolderAndAnnotation) {
  put(folders_.output / "shots" / "a.png", "x");
  put(folders_.input / "b.png", "x");
  EXPECT_EQ(referenced_file(folders_, {"a.png", "shots", "output"}),
            folders_.output / "shots" / "a.png");
  EXPECT_EQ(referenced_file(folders_, {"b.png [input]", "", "output"}), folders_.input / "b.png");
  EXPECT_EQ(referenced_file(folders_, {"shots/a.png", "", "output"}),
            folders_.output / "shots" / "a.png");
}

TEST_F(ComfyMasksTest, RefusesOriginalsOutsideTheFoldersAndReportsMissingOnes) {
  put(folders_.output / "a.png", "x");
  auto code = [&](ImageRef ref) {
    return test::error_code_of([&] { referenced_file(folders_, ref); });
  };
  EXPECT_EQ(code({"", "", "output"}), ErrorCode::kBadRequest);
  EXPECT_EQ(code({"/etc/passwd", "", "output"}), ErrorCode::kBadRequest);
  EXPECT_EQ(code({"../output/a.png", "", "input"}), ErrorCode::kBadRequest);
  EXPECT_EQ(code({"a.png", "", "models"}), ErrorCode::kBadRequest);
  EXPECT_EQ(code({"a.png", "../output", "input"}), ErrorCode::kForbidden);
  EXPECT_EQ(code({"a.png", "", "input"}), ErrorCode::kNotFound);
  EXPECT_EQ(code({"shots", "", "output"}), ErrorCode::kNotFound);  // a folder, not an image
}

TEST(ComfyMaskAlpha, TakesTheMasksAlphaAndKeepsTheColour) {
  const Image8 original = solid(3, 2, 3, {10, 20, 30});
  const Image8 mask = solid(3, 2, 4, {0, 0, 0, 77});
  const Image8 result = with_mask_alpha(original, mask);
  EXPECT_EQ(result.channels, 4);
  EXPECT_EQ(result.pixels, solid(3, 2, 4, {10, 20, 30, 77}).pixels);
  EXPECT_EQ(with_mask_alpha(solid(1, 1, 4, {1, 2, 3, 4}), solid(1, 1, 3, {9, 9, 9})).pixels,
            (std::vector<uint8_t>{1, 2, 3, 255}));  // a mask without alpha is opaque
}

TEST(ComfyMaskAlpha, ScalesAMaskOfAnotherSize) {
  Image8 mask = solid(2, 1, 4, {0, 0, 0, 0});
  mask.pixels[7] = 255;  // left transparent, right opaque
  const Image8 result = with_mask_alpha(solid(4, 2, 3, {5, 5, 5}), mask);
  ASSERT_EQ(result.width, 4);
  ASSERT_EQ(result.height, 2);
  std::vector<int> row;
  for (int x = 0; x < 4; ++x) row.push_back(result.pixels[x * 4 + 3]);
  EXPECT_EQ(row, (std::vector<int>{0, 64, 191, 255}));
  for (int x = 0; x < 4; ++x) EXPECT_EQ(result.pixels[(4 + x) * 4 + 3], row[x]);
}

TEST_F(ComfyMasksTest, MaskUploadBecomesTheOriginalWithTheMaskAlphaAndItsMetadata) {
  EmbeddedMetadata metadata;
  metadata.text = {{"prompt", R"({"3": {}})"}, {"workflow", R"({"nodes": []})"}};
  put(folders_.output / "shots" / "ComfyUI_00001_.png",
      png_text(solid(4, 4, 3, {200, 100, 50}), metadata));
  const http::Request request = mask_request(
      png_text(solid(2, 2, 4, {0, 0, 0, 128})),
      {{"type", "input"},
       {"subfolder", "clipspace"},
       {"original_ref",
        R"({"filename": "ComfyUI_00001_.png", "subfolder": "shots", "type": "output"})"}});
  const ImageUpload upload = parse_mask_upload(folders_, request);
  EXPECT_EQ(upload.filename, "mask.png");
  EXPECT_EQ(upload.type, "input");
  EXPECT_EQ(upload.subfolder, "clipspace");
  const std::vector<uint8_t> stored(upload.bytes.begin(), upload.bytes.end());
  EXPECT_EQ(decode_image(stored).pixels, solid(4, 4, 4, {200, 100, 50, 128}).pixels);
  const EmbeddedMetadata kept = read_embedded_metadata(stored);
  ASSERT_NE(kept.find("workflow"), nullptr);
  EXPECT_EQ(*kept.find("workflow"), R"({"nodes": []})");
  EXPECT_EQ(*kept.find("prompt"), R"({"3": {}})");
}

TEST_F(ComfyMasksTest, MaskUploadWithoutAnOriginalIsRefused) {
  const std::string mask = png_text(solid(2, 2, 4, {0, 0, 0, 0}));
  EXPECT_EQ(test::error_code_of([&] { parse_mask_upload(folders_, mask_request(mask, {})); }),
            ErrorCode::kBadRequest);
  EXPECT_EQ(test::error_code_of([&] {
              parse_mask_upload(folders_,
                                mask_request(mask, {{"original_ref", R"({"filename": "x.png"})"}}));
            }),
            ErrorCode::kNotFound);
  put(folders_.output / "broken.png", "not an image");
  const std::string broken_ref = R"({"filename": "broken.png"})";
  EXPECT_EQ(test::error_code_of([&] {
              parse_mask_upload(folders_, mask_request(mask, {{"original_ref", broken_ref}}));
            }),
            ErrorCode::kBadRequest);
}

}  // namespace
}  // namespace df::api

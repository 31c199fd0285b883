// Unit tests for the EXIF block, metadata text encodings and EXIF orientation.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "image/exif_block.h"
#include "image/orientation.h"
#include "image/text_encoding.h"
#include "test_image_support.h"

namespace df {
namespace {

using image_test::error_code_of;

std::vector<uint8_t> bytes_of(std::string_view text) { return {text.begin(), text.end()}; }

// A little-endian TIFF block with one IFD0 Orientation entry and an Exif IFD with UserComment.
std::vector<uint8_t> little_endian_block(uint16_t orientation,
                                         const std::vector<uint8_t>& comment) {
  std::vector<uint8_t> b = {'I', 'I', 42, 0, 8, 0, 0, 0};
  const auto u16 = [&](uint16_t v) { b.insert(b.end(), {uint8_t(v), uint8_t(v >> 8)}); };
  const auto u32 = [&](uint32_t v) {
    u16(uint16_t(v));
    u16(uint16_t(v >> 16));
  };
  const uint32_t exif_ifd = 8 + 2 + 2 * 12 + 4;
  const uint32_t comment_at = exif_ifd + 2 + 12 + 4;
  u16(2);
  u16(0x0112), u16(3), u32(1), u16(orientation), u16(0);
  u16(0x8769), u16(4), u32(1), u32(exif_ifd);
  u32(0);
  u16(1);
  u16(0x9286), u16(7), u32(uint32_t(comment.size())), u32(comment_at);
  u32(0);
  b.insert(b.end(), comment.begin(), comment.end());
  return b;
}

TEST(ImageExifBlock, RoundTripsParametersPromptAndWorkflow) {
  EmbeddedMetadata metadata;
  metadata.text = {{"parameters", "桜 🌸 cherry, café\nSteps: 20"},
                   {"prompt", R"({"3":{"class_type":"KSampler"}})"},
                   {"workflow", R"({"nodes":[]})"},
                   {"extra", "value: with colon"}};
  const std::vector<uint8_t> block = build_exif_block(metadata);
  ASSERT_GE(block.size(), 8u);
  EXPECT_EQ(block[0], 'M');  // big-endian, as A1111 writes it
  const ExifContents contents = parse_exif_block(block);
  EXPECT_EQ(contents.metadata.text, metadata.text);
  EXPECT_EQ(contents.orientation, 1);
}

TEST(ImageExifBlock, UsesComfyUiTagsAndA1111UserComment) {
  EmbeddedMetadata metadata;
  metadata.text = {{"workflow", "{}"}, {"prompt", "{\"1\":{}}"}, {"parameters", "hi"}};
  const std::vector<uint8_t> block = build_exif_block(metadata);
  const std::string text(block.begin(), block.end());
  EXPECT_NE(text.find(std::string("prompt:{\"1\":{}}\0", 16)), std::string::npos);
  EXPECT_NE(text.find(std::string("workflow:{}\0", 12)), std::string::npos);
  EXPECT_NE(text.find(std::string("UNICODE\0\0h\0i", 12)), std::string::npos);
  // Read back in tag order: parameters, then Model (prompt), then Make (workflow).
  const ExifContents contents = parse_exif_block(block);
  ASSERT_EQ(contents.metadata.text.size(), 3u);
  EXPECT_EQ(contents.metadata.text[0].first, "parameters");
  EXPECT_EQ(contents.metadata.text[1].first, "prompt");
  EXPECT_EQ(contents.metadata.text[2].first, "workflow");
}

TEST(ImageExifBlock, EmptyMetadataIsNoBlock) { EXPECT_TRUE(build_exif_block({}).empty()); }

TEST(ImageExifBlock, RejectsTooManyEntries) {
  EmbeddedMetadata metadata;
  metadata.text = {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}};
  EXPECT_EQ(error_code_of([&] { build_exif_block(metadata); }), ErrorCode::kInvalidArgument);
}

TEST(ImageExifBlock, ReadsForeignLittleEndianBlocks) {
  // UNICODE comment with a little-endian byte-order mark, in an "II" block with orientation 6.
  std::vector<uint8_t> comment = bytes_of(std::string_view("UNICODE\0", 8));
  comment.insert(comment.end(), {0xFF, 0xFE, 'o', 0, 'k', 0});
  ExifContents contents = parse_exif_block(little_endian_block(6, comment));
  EXPECT_EQ(contents.orientation, 6);
  ASSERT_EQ(contents.metadata.text.size(), 1u);
  EXPECT_EQ(contents.metadata.text[0], (std::pair<std::string, std::string>{"parameters", "ok"}));

  // No byte-order mark: little-endian text as the standard says, big-endian text as A1111 writes.
  comment = bytes_of(std::string_view("UNICODE\0", 8));
  comment.insert(comment.end(), {'S', 0, 't', 0, 'e', 0, 'p', 0, 0xC2, 0x30});  // "Step" + U+30C2
  EXPECT_EQ(*parse_exif_block(little_endian_block(1, comment)).metadata.find("parameters"),
            "Step\u30C2");
  comment = bytes_of(std::string_view("UNICODE\0", 8));
  comment.insert(comment.end(), {0, 'S', 0, 't', 0, 'e', 0, 'p', 0x30, 0xC2});
  EXPECT_EQ(*parse_exif_block(little_endian_block(1, comment)).metadata.find("parameters"),
            "Step\u30C2");

  // ASCII charset, JPEG "Exif\0\0" prefix in front.
  std::vector<uint8_t> prefixed = bytes_of(std::string_view("Exif\0\0", 6));
  const auto block =
      little_endian_block(3, bytes_of(std::string_view("ASCII\0\0\0Steps: 5\0", 17)));
  prefixed.insert(prefixed.end(), block.begin(), block.end());
  contents = parse_exif_block(prefixed);
  EXPECT_EQ(contents.orientation, 3);
  EXPECT_EQ(*contents.metadata.find("parameters"), "Steps: 5");
}

TEST(ImageExifBlock, BlankCameraCommentsAndBadOrientationsAreIgnored) {
  const auto block = little_endian_block(42, bytes_of(std::string_view("ASCII\0\0\0      ", 14)));
  const ExifContents contents = parse_exif_block(block);
  EXPECT_TRUE(contents.metadata.text.empty());
  EXPECT_EQ(contents.orientation, 1);
}

TEST(ImageExifBlock, BrokenBlocksAreCorruptFiles) {
  EXPECT_EQ(error_code_of([] { parse_exif_block(bytes_of("MM")); }), ErrorCode::kCorruptFile);
  EXPECT_EQ(
      error_code_of([] { parse_exif_block(bytes_of(std::string_view("XX\0*\0\0\0\x08", 8))); }),
      ErrorCode::kCorruptFile);
  std::vector<uint8_t> block = little_endian_block(1, bytes_of("UNDEFINED-ish comment"));
  block[4] = 0xF0;  // IFD0 offset past the end
  EXPECT_EQ(error_code_of([&] { parse_exif_block(block); }), ErrorCode::kCorruptFile);
  block = little_endian_block(1, bytes_of("a comment that is cut off"));
  block.resize(block.size() - 5);  // UserComment runs past the end
  EXPECT_EQ(error_code_of([&] { parse_exif_block(block); }), ErrorCode::kCorruptFile);
}

TEST(ImageTextEncoding, ConvertsBetweenUtf8Latin1AndUtf16) {
  EXPECT_EQ(utf8_to_latin1("café"), std::string("caf\xE9"));
  EXPECT_EQ(utf8_to_latin1("桜"), std::nullopt);
  EXPECT_EQ(latin1_to_utf8("caf\xE9"), "café");
  EXPECT_EQ(utf8_to_utf16("a🌸"), (std::u16string{u'a', char16_t(0xD83C), char16_t(0xDF38)}));
  EXPECT_EQ(utf16_to_utf8(utf8_to_utf16("桜 🌸 café")), "桜 🌸 café");
  EXPECT_EQ(utf16_to_utf8(std::u16string{char16_t(0xD800), u'x'}), "\xEF\xBF\xBDx");
  EXPECT_EQ(utf8_or_latin1_to_utf8("caf\xE9"), "café");
  EXPECT_EQ(utf8_or_latin1_to_utf8("café"), "café");
  EXPECT_EQ(error_code_of([] { utf8_to_utf16("bad \xFF"); }), ErrorCode::kInvalidArgument);
}

// A 3x2 RGB image whose pixel (x, y) has red = 10 * x + y.
Image8 labelled_image() {
  Image8 image{3, 2, 3, {}};
  for (int y = 0; y < 2; ++y) {
    for (int x = 0; x < 3; ++x)
      image.pixels.insert(image.pixels.end(), {uint8_t(10 * x + y), 0, 0});
  }
  return image;
}

std::vector<uint8_t> reds(const Image8& image) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i < image.pixels.size(); i += 3) out.push_back(image.pixels[i]);
  return out;
}

TEST(ImageOrientation, TurnsImagesUpright) {
  // Stored:  0 10 20 / 1 11 21.
  EXPECT_EQ(reds(apply_exif_orientation(labelled_image(), 1)),
            (std::vector<uint8_t>{0, 10, 20, 1, 11, 21}));
  EXPECT_EQ(reds(apply_exif_orientation(labelled_image(), 2)),
            (std::vector<uint8_t>{20, 10, 0, 21, 11, 1}));
  EXPECT_EQ(reds(apply_exif_orientation(labelled_image(), 3)),
            (std::vector<uint8_t>{21, 11, 1, 20, 10, 0}));
  EXPECT_EQ(reds(apply_exif_orientation(labelled_image(), 4)),
            (std::vector<uint8_t>{1, 11, 21, 0, 10, 20}));
  const Image8 clockwise = apply_exif_orientation(labelled_image(), 6);
  EXPECT_EQ(clockwise.width, 2);
  EXPECT_EQ(clockwise.height, 3);
  EXPECT_EQ(reds(clockwise), (std::vector<uint8_t>{1, 0, 11, 10, 21, 20}));
  EXPECT_EQ(reds(apply_exif_orientation(labelled_image(), 8)),
            (std::vector<uint8_t>{20, 21, 10, 11, 0, 1}));
  EXPECT_EQ(reds(apply_exif_orientation(labelled_image(), 5)),
            (std::vector<uint8_t>{0, 1, 10, 11, 20, 21}));
  EXPECT_EQ(reds(apply_exif_orientation(labelled_image(), 7)),
            (std::vector<uint8_t>{21, 20, 11, 10, 1, 0}));
}

}  // namespace
}  // namespace df

// Interop fixtures for tests/e2e/test_image_metadata_interop.py (skipped unless its variables are
// set): DF_IMAGE_SAMPLES_DIR receives files for other readers (Pillow) to check;
// DF_IMAGE_FOREIGN_DIR holds files other writers made, with a manifest of what they contain.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "image/image.h"
#include "test_image_support.h"

namespace df {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

// A ComfyUI-like workflow of about `size` bytes, ASCII as ComfyUI dumps it.
std::string workflow_json(size_t size) {
  nlohmann::json nodes = nlohmann::json::array();
  while (nodes.dump().size() < size) {
    nodes.push_back(
        {{"id", nodes.size()},
         {"type", "KSampler"},
         {"title", "桜 sampler"},
         {"widgets_values", {156680208700286, "randomize", 20, 8, "euler", "normal", 1}}});
  }
  return nlohmann::json({{"last_node_id", nodes.size()}, {"nodes", nodes}}).dump(-1, ' ', true);
}

EmbeddedMetadata sample_metadata(size_t workflow_size) {
  const GenerationParameters p = image_test::unicode_parameters();
  const nlohmann::json prompt = {
      {"3", {{"class_type", "KSampler"}, {"inputs", {{"seed", p.seed}, {"text", "桜"}}}}}};
  EmbeddedMetadata metadata;
  metadata.text = {{"parameters", format_a1111_parameters(p)},
                   {"prompt", prompt.dump(-1, ' ', true)},
                   {"workflow", workflow_json(workflow_size)}};
  return metadata;
}

TEST(ImageInterop, WritesSamplesForOtherReaders) {
  const char* dir = std::getenv("DF_IMAGE_SAMPLES_DIR");
  if (!dir) GTEST_SKIP() << "DF_IMAGE_SAMPLES_DIR is not set";
  struct Sample {
    std::string name;
    ImageFormat format;
    int channels;
    size_t workflow_size;
  };
  const std::vector<Sample> samples = {{"rgb.png", ImageFormat::kPng, 3, 100 * 1024},
                                       {"rgba.png", ImageFormat::kPng, 4, 100 * 1024},
                                       {"rgb.jpg", ImageFormat::kJpeg, 3, 20 * 1024},
                                       {"rgb.webp", ImageFormat::kWebp, 3, 100 * 1024},
                                       {"rgba.webp", ImageFormat::kWebp, 4, 100 * 1024}};
  nlohmann::json manifest = nlohmann::json::array();
  for (const auto& sample : samples) {
    const Image8 image = image_test::gradient_image(64, 48, sample.channels);
    const EmbeddedMetadata metadata = sample_metadata(sample.workflow_size);
    write_image_file((fs::path(dir) / sample.name).string(), image, sample.format, metadata);
    write_bytes(fs::path(dir) / (sample.name + ".raw"), image.pixels);
    manifest.push_back({{"file", sample.name},
                        {"width", image.width},
                        {"height", image.height},
                        {"channels", image.channels},
                        {"pixels", sample.name + ".raw"},
                        {"metadata", metadata.text}});
  }
  std::ofstream(fs::path(dir) / "manifest.json") << manifest.dump(2);
}

TEST(ImageInterop, ReadsFilesOtherWritersMade) {
  const char* dir = std::getenv("DF_IMAGE_FOREIGN_DIR");
  if (!dir) GTEST_SKIP() << "DF_IMAGE_FOREIGN_DIR is not set";
  std::ifstream manifest_file(fs::path(dir) / "manifest.json");
  const nlohmann::json manifest = nlohmann::json::parse(manifest_file);
  ASSERT_FALSE(manifest.empty());
  for (const auto& entry : manifest) {
    const std::string file = entry.at("file");
    SCOPED_TRACE(file);
    const std::vector<uint8_t> bytes = read_bytes(fs::path(dir) / file);
    const Image8 image = decode_image(bytes);
    EXPECT_EQ(image.width, entry.at("width").get<int>());
    EXPECT_EQ(image.height, entry.at("height").get<int>());
    ASSERT_EQ(image.channels, entry.at("channels").get<int>());
    const Image8 expected{image.width, image.height, image.channels,
                          read_bytes(fs::path(dir) / entry.at("pixels").get<std::string>())};
    EXPECT_LE(image_test::mean_abs_difference(image, expected),
              entry.at("tolerance").get<double>());
    if (entry.contains("metadata")) {
      const auto metadata =
          entry.at("metadata").get<std::vector<std::pair<std::string, std::string>>>();
      EXPECT_EQ(read_embedded_metadata(bytes).text, metadata);
    }
  }
}

}  // namespace
}  // namespace df

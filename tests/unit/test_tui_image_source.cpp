// Unit tests for the terminal client's image loading: local files, http URLs, and the cache.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "http/router.h"
#include "http/server.h"
#include "image/image.h"
#include "test_support.h"
#include "tui/image_source.h"

namespace df::tui {
namespace {

Image8 gradient(int width, int height) {
  Image8 image{width, height, 3,
               std::vector<uint8_t>(static_cast<std::size_t>(width * height * 3))};
  for (std::size_t i = 0; i < image.pixels.size(); ++i) {
    image.pixels[i] = static_cast<uint8_t>(i * 7);
  }
  return image;
}

class TuiImageSource : public ::testing::Test {
 protected:
  std::string write_png(const std::string& name, int width, int height) {
    const std::string path = (dir_.path() / name).string();
    write_image_file(path, gradient(width, height), ImageFormat::kPng, {});
    return path;
  }

  test::TestDir dir_{"df_tui_images_"};
};

TEST_F(TuiImageSource, ReadsLocalFiles) {
  const Image8 image = load_image(write_png("a.png", 6, 4), 1000);
  EXPECT_EQ(image.width, 6);
  EXPECT_EQ(image.height, 4);
  EXPECT_EQ(image.pixels, gradient(6, 4).pixels);
  EXPECT_EQ(test::error_code_of([&] { load_image((dir_.path() / "none.png").string(), 1000); }),
            ErrorCode::kIo);
}

TEST_F(TuiImageSource, FetchesHttpUrlsWithTheirQuery) {
  const std::string path = write_png("b.png", 3, 5);
  const std::vector<uint8_t> bytes = [&] {
    std::ifstream in(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
  }();
  http::Router router;
  router.add("GET", "/v1/artifacts/{id}", [&](http::Request& request) {
    if (request.query["sig"] != "ok") return http::Response::json(403, {{"code", "forbidden"}});
    return http::Response::text(200, std::string(bytes.begin(), bytes.end()), "image/png");
  });
  http::Server server(router, http::ServerLimits{});
  server.start("127.0.0.1", 0);
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  const Image8 image = load_image(base + "/v1/artifacts/7?sig=ok", 2000);
  EXPECT_EQ(image.width, 3);
  EXPECT_EQ(image.height, 5);
  const Error refused = test::error_of([&] { load_image(base + "/v1/artifacts/7?sig=bad", 2000); });
  EXPECT_EQ(refused.code(), ErrorCode::kIo);
  EXPECT_NE(std::string(refused.what()).find("403"), std::string::npos);
}

TEST_F(TuiImageSource, CacheReadsOncePerVersionAndRemembersFailures) {
  const std::string path = write_png("c.png", 2, 2);
  ImageCache cache(1000, 2);
  ASSERT_NE(cache.get(path, 1), nullptr);
  std::filesystem::remove(path);
  const Image8* cached = cache.get(path, 1);
  ASSERT_NE(cached, nullptr);
  EXPECT_EQ(cached->width, 2);
  EXPECT_EQ(cache.error(), "");
  EXPECT_EQ(cache.get(path, 2), nullptr);
  EXPECT_NE(cache.error(), "");
  write_png("c.png", 2, 2);
  EXPECT_EQ(cache.get(path, 2), nullptr);  // the failure stands until the version changes
  EXPECT_NE(cache.get(path, 3), nullptr);
  EXPECT_EQ(cache.error(), "");
}

}  // namespace
}  // namespace df::tui

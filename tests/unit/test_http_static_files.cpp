// Tests of static file responses: content types, index.html, caching, and paths that leave root.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "core/error.h"
#include "http/client.h"
#include "http/server.h"
#include "http/static_files.h"
#include "test_support.h"

namespace df::http {
namespace {

namespace fs = std::filesystem;
using test::error_code_of;

void write_text_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string header_of(const Response& response, const std::string& name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return value;
  }
  return "";
}

class HttpStaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_text_file(root() / "index.html", "<html>home</html>");
    write_text_file(root() / "app.js", "console.log(1)");
    write_text_file(root() / "style.css", "body{}");
    write_text_file(root() / "logo.PNG", std::string("\x89PNG\0\x01", 6));
    write_text_file(root() / "sub" / "index.html", "<html>sub</html>");
    write_text_file(root() / "sub" / "notes.txt", "notes");
    write_text_file(root() / "%2e%2e" / "odd.txt", "a directory really named %2e%2e");
    fs::create_directories(root() / "empty");
    write_text_file(dir_.path() / "secret.txt", "outside the root");
    fs::create_symlink(dir_.path() / "secret.txt", root() / "link.txt");
  }

  fs::path root() const { return dir_.path() / "web"; }
  Response serve(const std::string& relative_path) const {
    return static_file_response(root().string(), relative_path);
  }

  test::TestDir dir_{"df_static_"};
};

TEST(HttpContentTypeTest, KnownExtensionsCaseInsensitively) {
  EXPECT_EQ(content_type_for("a.html"), "text/html; charset=utf-8");
  EXPECT_EQ(content_type_for("a.js"), "application/javascript");
  EXPECT_EQ(content_type_for("a.mjs"), "application/javascript");
  EXPECT_EQ(content_type_for("a.css"), "text/css");
  EXPECT_EQ(content_type_for("a.json"), "application/json");
  EXPECT_EQ(content_type_for("a.js.map"), "application/json");
  EXPECT_EQ(content_type_for("a.svg"), "image/svg+xml");
  EXPECT_EQ(content_type_for("a.png"), "image/png");
  EXPECT_EQ(content_type_for("A.JPG"), "image/jpeg");
  EXPECT_EQ(content_type_for("a.jpeg"), "image/jpeg");
  EXPECT_EQ(content_type_for("a.webp"), "image/webp");
  EXPECT_EQ(content_type_for("a.ico"), "image/x-icon");
  EXPECT_EQ(content_type_for("a.woff"), "font/woff");
  EXPECT_EQ(content_type_for("a.woff2"), "font/woff2");
  EXPECT_EQ(content_type_for("a.ttf"), "font/ttf");
  EXPECT_EQ(content_type_for("a.wasm"), "application/wasm");
  EXPECT_EQ(content_type_for("dir/a.txt"), "text/plain; charset=utf-8");
  EXPECT_EQ(content_type_for("a.bin"), "application/octet-stream");
  EXPECT_EQ(content_type_for("Makefile"), "application/octet-stream");
}

TEST_F(HttpStaticFilesTest, ServesFilesWithTypeAndCachingByExtension) {
  Response script = serve("app.js");
  EXPECT_EQ(script.status, 200);
  EXPECT_EQ(script.body, "console.log(1)");
  EXPECT_EQ(script.content_type, "application/javascript");
  EXPECT_EQ(header_of(script, "Cache-Control"), "no-cache");
  EXPECT_EQ(header_of(serve("style.css"), "Cache-Control"), "no-cache");
  Response image = serve("logo.PNG");
  EXPECT_EQ(image.body, std::string("\x89PNG\0\x01", 6));
  EXPECT_EQ(image.content_type, "image/png");
  EXPECT_EQ(header_of(image, "Cache-Control"), "");
  EXPECT_EQ(serve("sub/notes.txt").body, "notes");
  EXPECT_EQ(serve("sub/../app.js").body, "console.log(1)");  // stays inside
  EXPECT_EQ(serve("%2e%2e/odd.txt").body, "a directory really named %2e%2e");  // not decoded again
}

TEST_F(HttpStaticFilesTest, EmptyPathAndDirectoriesServeTheirIndex) {
  Response home = serve("");
  EXPECT_EQ(home.body, "<html>home</html>");
  EXPECT_EQ(home.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(header_of(home, "Cache-Control"), "no-cache");
  EXPECT_EQ(serve("sub").body, "<html>sub</html>");
  EXPECT_EQ(serve("sub/").body, "<html>sub</html>");
}

TEST_F(HttpStaticFilesTest, MissingFilesAndDirectoriesWithoutIndexAreNotFound) {
  EXPECT_EQ(error_code_of([&] { serve("nope.js"); }), ErrorCode::kNotFound);
  EXPECT_EQ(error_code_of([&] { serve("sub/nope/deeper.js"); }), ErrorCode::kNotFound);
  EXPECT_EQ(error_code_of([&] { serve("empty"); }), ErrorCode::kNotFound);
  EXPECT_EQ(error_code_of([&] { serve(std::string("app.js\0.png", 11)); }), ErrorCode::kNotFound);
  EXPECT_EQ(error_code_of([&] { serve(std::string(5000, 'n')); }), ErrorCode::kNotFound);
  EXPECT_EQ(error_code_of([] { static_file_response("/no/such/root", ""); }),
            ErrorCode::kNotFound);
}

TEST_F(HttpStaticFilesTest, PathsLeavingTheRootAreRefused) {
  EXPECT_EQ(error_code_of([&] { serve("../secret.txt"); }), ErrorCode::kForbidden);
  EXPECT_EQ(error_code_of([&] { serve("sub/../../secret.txt"); }), ErrorCode::kForbidden);
  EXPECT_EQ(error_code_of([&] { serve(".."); }), ErrorCode::kForbidden);
  EXPECT_EQ(error_code_of([&] { serve((dir_.path() / "secret.txt").string()); }),
            ErrorCode::kForbidden);
  EXPECT_EQ(error_code_of([&] { serve("link.txt"); }), ErrorCode::kForbidden);
}

TEST_F(HttpStaticFilesTest, EncodedEscapesThroughTheServerAreRefused) {
  Router router;
  std::string web_root = root().string();
  router.add("GET", "/ui", [&](Request&) { return static_file_response(web_root, ""); });
  router.add("GET", "/ui/{path...}", [&](Request& request) {
    return static_file_response(web_root, request.path_params.at("path"));
  });
  Server server(router, ServerLimits{});
  server.start("127.0.0.1", 0);
  Client client("http://127.0.0.1:" + std::to_string(server.port()), 5000);

  ClientResponse home = client.get("/ui");
  EXPECT_EQ(home.status, 200);
  EXPECT_EQ(home.body, "<html>home</html>");
  EXPECT_EQ(home.header("Cache-Control"), "no-cache");
  EXPECT_EQ(client.get("/ui/sub/notes.txt").body, "notes");
  EXPECT_EQ(client.request("HEAD", "/ui/app.js").header("Content-Length"), "14");

  for (const char* target :
       {"/ui/%2e%2e/secret.txt", "/ui/%2E%2E%2Fsecret.txt", "/ui/sub/..%2f..%2fsecret.txt",
        "/ui/../secret.txt"}) {
    ClientResponse refused = client.get(target);
    EXPECT_EQ(refused.status, 403) << target;
    EXPECT_EQ(refused.json()["code"], "forbidden") << target;
    EXPECT_EQ(refused.body.find("outside the root"), std::string::npos) << target;
  }
  ClientResponse missing = client.get("/ui/nope.css");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.json()["code"], "not_found");
}

}  // namespace
}  // namespace df::http

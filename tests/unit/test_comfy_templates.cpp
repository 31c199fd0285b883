// Tests for Dream Forge's workflow templates: the catalog, the frontend's index, the /templates/
// routes and where the templates folder is found.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "api/comfy_templates.h"
#include "core/error.h"
#include "nodes/packs/node_packs.h"
#include "test_support.h"

namespace df::api {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const json kGraph = {
    {"4", {{"class_type", "CheckpointLoaderSimple"}, {"inputs", {{"ckpt_name", "model.safetensors"}}}}},
    {"5", {{"class_type", "EmptyLatentImage"}, {"inputs", {{"width", 512}, {"height", 512}, {"batch_size", 1}}}}},
};

void write(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

// A templates folder holding `catalog` and a graph for each of `graphs`.
void make_folder(const fs::path& dir, const json& catalog, const std::vector<std::string>& graphs) {
  fs::create_directories(dir);
  write(dir / "catalog.json", catalog.dump());
  for (const auto& name : graphs) write(dir / (name + ".api.json"), kGraph.dump());
}

json entry(const std::string& name) {
  return {{"name", name}, {"title", "Title of " + name}, {"description", "About " + name},
          {"tags", {"Image"}}, {"models", {"SD1.5"}}};
}

ErrorCode load_error(const fs::path& dir) {
  try {
    TemplateLibrary library(dir);
  } catch (const Error& error) {
    return error.code();
  }
  ADD_FAILURE() << "loaded";
  return ErrorCode::kInternal;
}

http::Response get(const http::Router& router, const std::string& path) {
  http::Request request;
  request.method = "GET";
  request.path = path;
  const http::Route& route = router.match(request);
  return route.handler(request);
}

TEST(ComfyTemplates, IndexIsOneDreamForgeCategoryOfTheDefaultModuleInCatalogOrder) {
  const test::TestDir dir("templates");
  make_folder(dir.path(), json::array({entry("b_second"), entry("a_first")}), {"b_second", "a_first"});
  const TemplateLibrary library(dir.path());
  const json index = library.index();
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index[0]["moduleName"], "default");
  EXPECT_EQ(index[0]["title"], "Dream Forge");
  const json& cards = index[0]["templates"];
  ASSERT_EQ(cards.size(), 2u);
  EXPECT_EQ(cards[0]["name"], "b_second");
  EXPECT_EQ(cards[0]["title"], "Title of b_second");
  EXPECT_EQ(cards[0]["mediaType"], "image");
  EXPECT_EQ(cards[0]["mediaSubtype"], "webp");
  EXPECT_EQ(cards[0]["models"], json::array({"SD1.5"}));
  EXPECT_EQ(library.find("a_first")->prompt, kGraph);
  EXPECT_EQ(library.thumbnail_path(*library.find("a_first")), dir.path() / "a_first-1.webp");
}

TEST(ComfyTemplates, NoFolderIsAnEmptyIndex) {
  EXPECT_EQ(TemplateLibrary("").index(), json::array());
}

TEST(ComfyTemplates, FindsOnlyCatalogNames) {
  const test::TestDir dir("templates");
  make_folder(dir.path(), json::array({entry("t2i")}), {"t2i"});
  const TemplateLibrary library(dir.path());
  for (const char* name : {"", "T2I", "../t2i", "t2i.api", "catalog", "/t2i"}) {
    EXPECT_EQ(library.find(name), nullptr) << name;
  }
}

TEST(ComfyTemplates, BadCatalogsAreErrors) {
  const test::TestDir dir("templates");
  make_folder(dir.path() / "bad_name", json::array({entry("../escape")}), {});
  EXPECT_EQ(load_error(dir.path() / "bad_name"), ErrorCode::kInternal);
  make_folder(dir.path() / "twice", json::array({entry("t2i"), entry("t2i")}), {"t2i"});
  EXPECT_EQ(load_error(dir.path() / "twice"), ErrorCode::kInternal);
  json untitled = entry("t2i");
  untitled.erase("title");
  make_folder(dir.path() / "untitled", json::array({untitled}), {"t2i"});
  EXPECT_EQ(load_error(dir.path() / "untitled"), ErrorCode::kInternal);
  make_folder(dir.path() / "no_graph", json::array({entry("t2i")}), {});
  EXPECT_EQ(load_error(dir.path() / "no_graph"), ErrorCode::kIo);
  make_folder(dir.path() / "not_json", json::array({entry("t2i")}), {});
  write(dir.path() / "not_json" / "t2i.api.json", "{");
  EXPECT_EQ(load_error(dir.path() / "not_json"), ErrorCode::kInternal);
}

TEST(ComfyTemplates, RoutesServeWorkflowsThumbnailsAnd404ForAnythingElse) {
  const test::TestDir dir("templates");
  make_folder(dir.path(), json::array({entry("t2i"), entry("no_thumb")}), {"t2i", "no_thumb"});
  write(dir.path() / "t2i-1.webp", "RIFF....WEBP");
  http::Router router;
  register_template_routes(router, TemplateLibrary(dir.path()), nodes::builtin_node_schemas());

  EXPECT_EQ(json::parse(get(router, "/templates/index.json").body)[0]["templates"].size(), 2u);
  EXPECT_EQ(json::parse(get(router, "/templates/index_logo.json").body), json::object());
  const http::Response workflow = get(router, "/templates/t2i.json");
  EXPECT_EQ(workflow.status, 200);
  EXPECT_EQ(json::parse(workflow.body)["nodes"].size(), 2u);
  const http::Response thumbnail = get(router, "/templates/t2i-1.webp");
  EXPECT_EQ(thumbnail.status, 200);
  EXPECT_EQ(thumbnail.content_type, "image/webp");
  EXPECT_EQ(thumbnail.body, "RIFF....WEBP");
  for (const char* path : {"/templates/no_thumb-1.webp", "/templates/catalog.json",
                           "/templates/t2i.api.json", "/templates/t2i-2.webp", "/templates/../t2i.json",
                           "/templates/sub/t2i.json", "/templates//etc/passwd", "/templates/index.fr.json"}) {
    EXPECT_EQ(get(router, path).status, 404) << path;
  }
}

TEST(ComfyTemplates, AGraphThatDoesNotFitTheNodesIsAnError) {
  const test::TestDir dir("templates");
  make_folder(dir.path(), json::array({entry("t2i")}), {});
  write(dir.path() / "t2i.api.json", R"({"1": {"class_type": "NoSuchNode", "inputs": {}}})");
  http::Router router;
  try {
    register_template_routes(router, TemplateLibrary(dir.path()), nodes::builtin_node_schemas());
    FAIL() << "registered";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kInternal);
    EXPECT_NE(std::string(error.what()).find("t2i"), std::string::npos);
  }
}

TEST(ComfyTemplates, TheFolderIsFoundInAnInstalledPrefixOrBesideTheBuildFolder) {
  const test::TestDir dir("templates");
  const fs::path installed = dir.path() / "prefix" / "share" / "dreamforge" / "templates";
  make_folder(installed, json::array(), {});
  EXPECT_EQ(templates_dir_beside(dir.path() / "prefix" / "bin" / "dreamforge"), installed);
  const fs::path source = dir.path() / "repo" / "share" / "dreamforge" / "templates";
  make_folder(source, json::array(), {});
  EXPECT_EQ(templates_dir_beside(dir.path() / "repo" / "build" / "bin" / "dreamforge"), source);
  EXPECT_EQ(templates_dir_beside(dir.path() / "elsewhere" / "bin" / "dreamforge"), fs::path());
}

TEST(ComfyTemplates, TheShippedTemplatesFitTheBuiltinNodes) {
  const fs::path source_tree = fs::path(DF_TEST_DATA_DIR).parent_path().parent_path().parent_path();
  const TemplateLibrary library(source_tree / "share" / "dreamforge" / "templates");
  EXPECT_GE(library.templates().size(), 7u);
  http::Router router;
  register_template_routes(router, library, nodes::builtin_node_schemas());
  for (const auto& entry : library.templates()) {
    EXPECT_EQ(get(router, "/templates/" + entry.name + "-1.webp").status, 200) << entry.name;
  }
}

}  // namespace
}  // namespace df::api

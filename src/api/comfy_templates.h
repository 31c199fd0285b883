// Dream Forge's workflow templates in the web frontend's template browser: API-format graphs kept in
// a folder (share/dreamforge/templates) with their catalog and thumbnails.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "graph/node_schema.h"
#include "http/router.h"

namespace df::api {

// A template of the catalog: what the browser shows about it, and its graph.
struct WorkflowTemplate {
  std::string name;     // [a-z0-9_]+: <name>.api.json is its graph, <name>-1.webp its thumbnail
  nlohmann::json info;  // title, description and the optional tags, models, tutorialUrl
  nlohmann::json prompt;  // the API-format graph
};

// The templates of a folder: catalog.json (a list of {name, title, description, tags?, models?,
// tutorialUrl?} in display order) and each template's <name>.api.json.
class TemplateLibrary {
 public:
  // An empty library for an empty `dir`. Throws Error naming the file: kIo when the catalog or a
  // graph cannot be read, kInternal when one is malformed or a name is not [a-z0-9_]+.
  explicit TemplateLibrary(std::filesystem::path dir);

  const std::vector<WorkflowTemplate>& templates() const { return templates_; }
  // The template called `name`; nullptr for any other string (so no path can name a file).
  const WorkflowTemplate* find(std::string_view name) const;
  // GET /templates/index.json: one "Dream Forge" category of the frontend's "default" module
  // (whose workflows and thumbnails the frontend fetches from /templates/), [] when empty.
  nlohmann::json index() const;
  std::filesystem::path thumbnail_path(const WorkflowTemplate& entry) const;

 private:
  std::filesystem::path dir_;
  std::vector<WorkflowTemplate> templates_;
};

// The templates folder of an install beside `executable`: <bin>/../share/dreamforge/templates
// (an installed prefix), else <bin>/../../share/dreamforge/templates (a build folder in the source
// tree, build/bin); "" when neither holds a catalog.json.
std::filesystem::path templates_dir_beside(const std::filesystem::path& executable);

// templates_dir_beside() of the running executable.
std::filesystem::path installed_templates_dir();

// GET /templates/index.json, /templates/index_logo.json ({}), /templates/<name>.json (the
// template's graph in the frontend's UI format, made with `schemas`) and /templates/<name>-1.webp;
// any other path under /templates/ is 404. Throws Error(kInternal) when a template's graph does
// not fit `schemas`.
void register_template_routes(http::Router& router, const TemplateLibrary& library,
                              const graph::NodeSchemaRegistry& schemas);

}  // namespace df::api

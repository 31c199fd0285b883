// Dream Forge's workflow templates in the web frontend's template browser: the catalog, its index in
// the frontend's format, the UI-format workflows and the thumbnails.
#include "api/comfy_templates.h"

#include <algorithm>
#include <map>
#include <memory>

#include "api/comfy_router.h"
#include "core/error.h"
#include "core/files.h"
#include "graph/ui_workflow.h"

namespace df::api {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kCatalogFile = "catalog.json";
constexpr const char* kGraphSuffix = ".api.json";
constexpr const char* kWorkflowSuffix = ".json";
constexpr const char* kThumbnailSuffix = "-1.webp";

bool is_template_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

json read_json_file(const fs::path& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path.string());
  json parsed = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) throw Error(ErrorCode::kInternal, path.string() + " is not JSON");
  return parsed;
}

bool is_string_list(const json& value) {
  return value.is_array() &&
         std::all_of(value.begin(), value.end(), [](const json& item) { return item.is_string(); });
}

// What the browser shows about one catalog entry: title and description, with the optional tags,
// models and tutorialUrl. Throws Error(kInternal) naming what is wrong.
json template_info(const json& entry, const std::string& where) {
  auto fail = [&where](const std::string& what) {
    throw Error(ErrorCode::kInternal, where + ": " + what);
  };
  json info = json::object();
  for (const char* key : {"title", "description"}) {
    if (!entry.contains(key) || !entry[key].is_string()) fail(std::string("no string '") + key + "'");
    info[key] = entry[key];
  }
  for (const char* key : {"tags", "models"}) {
    if (!entry.contains(key)) continue;
    if (!is_string_list(entry[key])) fail(std::string("'") + key + "' is not a list of strings");
    info[key] = entry[key];
  }
  if (entry.contains("tutorialUrl")) {
    if (!entry["tutorialUrl"].is_string()) fail("'tutorialUrl' is not a string");
    info["tutorialUrl"] = entry["tutorialUrl"];
  }
  return info;
}

WorkflowTemplate load_template(const fs::path& dir, const json& entry, const std::string& where) {
  if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() ||
      !is_template_name(entry["name"].get<std::string>())) {
    throw Error(ErrorCode::kInternal, where + ": no 'name' of lowercase letters, digits and '_'");
  }
  const std::string name = entry["name"];
  const fs::path graph_path = dir / (name + kGraphSuffix);
  json prompt = read_json_file(graph_path);
  if (!prompt.is_object() || prompt.empty()) {
    throw Error(ErrorCode::kInternal, graph_path.string() + " is no API-format graph");
  }
  return {name, template_info(entry, where + " (" + name + ")"), std::move(prompt)};
}

// The frontend's template card: what the catalog says, with the thumbnail's media type.
json index_entry(const WorkflowTemplate& entry) {
  json card = {{"name", entry.name}, {"mediaType", "image"}, {"mediaSubtype", "webp"},
               {"openSource", true}};
  card.update(entry.info);
  return card;
}

// What the /templates/ routes answer from: the library and each template's UI workflow.
struct TemplateRoutes {
  TemplateLibrary library;
  std::map<std::string, json, std::less<>> ui_workflows;

  // GET /templates/<file>: a template's workflow or thumbnail; Error(kNotFound) for anything else.
  http::Response answer(std::string_view file) const {
    if (file.ends_with(kThumbnailSuffix)) {
      if (const WorkflowTemplate* entry = library.find(stem(file, kThumbnailSuffix))) {
        return thumbnail(*entry);
      }
    } else if (file.ends_with(kWorkflowSuffix)) {
      const auto workflow = ui_workflows.find(stem(file, kWorkflowSuffix));
      if (workflow != ui_workflows.end()) return http::Response::json(200, workflow->second);
    }
    throw Error(ErrorCode::kNotFound, "no template file '" + std::string(file) + "'");
  }

  static std::string_view stem(std::string_view file, std::string_view suffix) {
    return file.substr(0, file.size() - suffix.size());
  }

  http::Response thumbnail(const WorkflowTemplate& entry) const {
    const fs::path path = library.thumbnail_path(entry);
    std::error_code error;
    if (!fs::is_regular_file(path, error)) {
      throw Error(ErrorCode::kNotFound, "template '" + entry.name + "' has no thumbnail");
    }
    const std::vector<uint8_t> webp = read_file_bytes(path.string());
    return http::Response::text(200, std::string(webp.begin(), webp.end()), "image/webp");
  }
};

}  // namespace

TemplateLibrary::TemplateLibrary(fs::path dir) : dir_(std::move(dir)) {
  if (dir_.empty()) return;
  const fs::path catalog_path = dir_ / kCatalogFile;
  const json catalog = read_json_file(catalog_path);
  if (!catalog.is_array()) throw Error(ErrorCode::kInternal, catalog_path.string() + " is no list");
  for (size_t i = 0; i < catalog.size(); ++i) {
    const std::string where = catalog_path.string() + " entry " + std::to_string(i);
    WorkflowTemplate entry = load_template(dir_, catalog[i], where);
    if (find(entry.name) != nullptr) {
      throw Error(ErrorCode::kInternal, where + ": template '" + entry.name + "' is listed twice");
    }
    templates_.push_back(std::move(entry));
  }
}

const WorkflowTemplate* TemplateLibrary::find(std::string_view name) const {
  const auto found = std::find_if(templates_.begin(), templates_.end(),
                                  [name](const WorkflowTemplate& entry) { return entry.name == name; });
  return found == templates_.end() ? nullptr : &*found;
}

json TemplateLibrary::index() const {
  if (templates_.empty()) return json::array();
  json cards = json::array();
  for (const auto& entry : templates_) cards.push_back(index_entry(entry));
  return json::array({{{"moduleName", "default"},
                       {"title", "Dream Forge"},
                       {"type", "image"},
                       {"isEssential", true},
                       {"icon", "icon-[lucide--image]"},
                       {"templates", std::move(cards)}}});
}

fs::path TemplateLibrary::thumbnail_path(const WorkflowTemplate& entry) const {
  return dir_ / (entry.name + kThumbnailSuffix);
}

fs::path templates_dir_beside(const fs::path& executable) {
  const fs::path bin = executable.parent_path();
  for (const fs::path& prefix : {bin / "..", bin / ".." / ".."}) {
    const fs::path dir = (prefix / "share" / "dreamforge" / "templates").lexically_normal();
    std::error_code error;
    if (fs::is_regular_file(dir / kCatalogFile, error)) return dir;
  }
  return {};
}

fs::path installed_templates_dir() {
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  return error ? fs::path() : templates_dir_beside(self);
}

void register_template_routes(http::Router& router, const TemplateLibrary& library,
                              const graph::NodeSchemaRegistry& schemas) {
  auto routes = std::make_shared<TemplateRoutes>(TemplateRoutes{library, {}});
  for (const auto& entry : library.templates()) {
    try {
      routes->ui_workflows[entry.name] = graph::ui_workflow_from_prompt(entry.prompt, schemas);
    } catch (const Error& error) {
      throw Error(ErrorCode::kInternal,
                  "template '" + entry.name + "' does not fit the nodes: " + error.what());
    }
  }
  const json index = library.index();
  router.add("GET", "/templates/index.json",
             [index](http::Request&) { return http::Response::json(200, index); });
  router.add("GET", "/templates/index_logo.json",
             [](http::Request&) { return http::Response::json(200, json::object()); });
  router.add("GET", "/templates/{file...}", with_plain_errors([routes](http::Request& request) {
               return routes->answer(request.path_params.at("file"));
             }));
}

}  // namespace df::api

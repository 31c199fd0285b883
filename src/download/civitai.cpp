// CivitAI REST API: model and version lookups, file choice, error wording.
#include "download/civitai.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>

#include "core/error.h"
#include "download/file_selection.h"

namespace df::download {
namespace {

[[noreturn]] void unexpected_answer(const std::string& what) {
  throw Error(ErrorCode::kUnavailable, "CivitAI sent an unexpected answer: " + what);
}

StatusDescriber civitai_statuses(bool has_token) {
  return [has_token](long status, const std::string& subject) {
    if (status == 401) {
      return Error(ErrorCode::kForbidden,
                   has_token ? "CivitAI rejected the API key in CIVITAI_TOKEN for " + subject
                             : "CivitAI wants a login for " + subject +
                                   "; set CIVITAI_TOKEN to an API key from your account settings",
                   {{"status", status}});
    }
    if (status == 403) {
      return Error(ErrorCode::kForbidden,
                   "CivitAI refused " + subject +
                       " to this account (early access, or restricted by its creator)",
                   {{"status", status}});
    }
    if (status == 404) {
      return Error(ErrorCode::kNotFound, subject + " was not found on CivitAI",
                   {{"status", status}});
    }
    return Error(ErrorCode::kUnavailable,
                 "CivitAI answered HTTP " + std::to_string(status) + " for " + subject,
                 {{"status", status}});
  };
}

nlohmann::json parse_answer(const std::string& body, const std::string& what) {
  auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) unexpected_answer(what + " is not a JSON object");
  return json;
}

std::string string_field(const nlohmann::json& object, const char* key) {
  const auto found = object.find(key);
  return found != object.end() && found->is_string() ? found->get<std::string>() : "";
}

std::string id_field(const nlohmann::json& object, const char* key) {
  const auto found = object.find(key);
  if (found == object.end() || !found->is_number_integer())
    unexpected_answer(std::string("no ") + key);
  return std::to_string(found->get<int64_t>());
}

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

bool is_model_file(const nlohmann::json& file) {
  const std::string type = string_field(file, "type");
  return type.empty() || type == "Model" || type == "Pruned Model";
}

RemoteFile remote_file(const nlohmann::json& file) {
  RemoteFile remote;
  const std::string name = string_field(file, "name");
  if (name.empty() || name.find('/') != std::string::npos || name.find('\\') != std::string::npos ||
      name.starts_with(".")) {
    unexpected_answer("a file named '" + name + "'");
  }
  remote.path = name;
  remote.url = string_field(file, "downloadUrl");
  if (remote.url.empty()) unexpected_answer("no downloadUrl for '" + name + "'");
  const auto size_kb = file.value("sizeKB", 0.0);
  remote.size = std::llround(size_kb * 1024.0);
  remote.size_exact = false;
  const auto& hashes = file.value("hashes", nlohmann::json::object());
  remote.digest = {DigestKind::kSha256, lowercase(string_field(hashes, "SHA256"))};
  return remote;
}

}  // namespace

std::string civitai_kind(const std::string& type) {
  static const std::map<std::string, std::string> kinds = {{"Checkpoint", "checkpoints"},
                                                           {"LORA", "loras"},
                                                           {"LoCon", "loras"},
                                                           {"DoRA", "loras"},
                                                           {"TextualInversion", "embeddings"},
                                                           {"VAE", "vae"},
                                                           {"Controlnet", "controlnet"},
                                                           {"Upscaler", "upscale_models"},
                                                           {"Hypernetwork", "hypernetworks"}};
  const auto found = kinds.find(type);
  if (found == kinds.end()) {
    throw Error(ErrorCode::kUnsupported,
                "CivitAI models of type '" + type + "' are not a kind Dream Forge installs");
  }
  return found->second;
}

std::string civitai_family(const std::string& base_model) {
  if (base_model.starts_with("SD 1.")) return "sd1";
  if (base_model.starts_with("SD 2.")) return "sd2";
  if (base_model.starts_with("SDXL") || base_model == "Pony" || base_model == "Illustrious" ||
      base_model == "NoobAI") {
    return "sdxl";
  }
  return "";
}

std::string civitai_slug(const std::string& name) {
  std::string slug;
  for (const char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      slug += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!slug.empty() && slug.back() != '-') {
      slug += '-';
    }
  }
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  return slug;
}

Release civitai_release(const ModelRef& ref, const std::string& model_name,
                        const std::string& model_type, const nlohmann::json& version) {
  Release release;
  release.source_uri = format_model_ref(ref);
  release.revision = id_field(version, "id");
  release.name = folder_name_part(civitai_slug(model_name));
  release.version = release.revision;
  release.kind = civitai_kind(model_type);
  const std::string base_model = string_field(version, "baseModel");
  release.family = civitai_family(base_model);
  const auto& files = version.value("files", nlohmann::json::array());
  if (!files.is_array()) unexpected_answer("the version's files are not a list");
  for (const auto& file : files) {
    if (!file.is_object() || !is_model_file(file)) continue;
    auto remote = remote_file(file);
    const bool primary = file.value("primary", false);
    release.listing.insert(primary ? release.listing.begin() : release.listing.end(),
                           std::move(remote));
  }
  release.extra = {
      {"source", "civitai"},
      {"model_id", version.contains("modelId") ? id_field(version, "modelId") : ref.model},
      {"version_id", release.revision},
      {"version_name", string_field(version, "name")},
      {"model_name", model_name},
      {"type", model_type},
      {"base_model", base_model},
      {"trained_words", version.value("trainedWords", nlohmann::json::array())}};
  return release;
}

Civitai::Civitai(std::string base_url, std::string token, RetryPolicy retry)
    : base_url_(std::move(base_url)), client_(token, civitai_statuses(!token.empty()), retry) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
}

std::string Civitai::model_id_for(const ModelRef& ref) {
  if (std::all_of(ref.model.begin(), ref.model.end(), ::isdigit)) return ref.model;
  const auto answer = parse_answer(
      client_.get(base_url_ + "/api/v1/models?limit=100&query=" + url_encode(ref.model),
                  "the search for '" + ref.model + "'"),
      "the model search");
  std::vector<std::string> ids;
  for (const auto& item : answer.value("items", nlohmann::json::array())) {
    if (item.is_object() && civitai_slug(string_field(item, "name")) == ref.model) {
      ids.push_back(id_field(item, "id"));
    }
  }
  if (ids.empty()) {
    throw Error(ErrorCode::kNotFound, "no CivitAI model is named '" + ref.model +
                                          "'; use its numeric id (civitai.com/models/<id>/...)");
  }
  if (ids.size() > 1) {
    std::string listed;
    for (const auto& id : ids) listed += (listed.empty() ? "" : ", ") + id;
    throw Error(ErrorCode::kInvalidArgument, "several CivitAI models are named '" + ref.model +
                                                 "' (ids " + listed + "); use the numeric id");
  }
  return ids.front();
}

Release Civitai::resolve(const ModelRef& ref) {
  const std::string model_id = model_id_for(ref);
  if (!ref.revision.empty()) {
    const auto version =
        parse_answer(client_.get(base_url_ + "/api/v1/model-versions/" + ref.revision,
                                 "model version " + ref.revision),
                     "the model version");
    if (id_field(version, "modelId") != model_id) {
      throw Error(ErrorCode::kNotFound, "CivitAI model version " + ref.revision +
                                            " belongs to model " + id_field(version, "modelId") +
                                            ", not to " + ref.model);
    }
    const auto& model = version.value("model", nlohmann::json::object());
    return civitai_release(ref, string_field(model, "name"), string_field(model, "type"), version);
  }
  const auto model = parse_answer(
      client_.get(base_url_ + "/api/v1/models/" + model_id, "model " + ref.model), "the model");
  const auto& versions = model.value("modelVersions", nlohmann::json::array());
  if (!versions.is_array() || versions.empty() || !versions[0].is_object()) {
    throw Error(ErrorCode::kNotFound, "CivitAI model " + ref.model + " has no published version");
  }
  return civitai_release(ref, string_field(model, "name"), string_field(model, "type"),
                         versions[0]);
}

std::vector<RemoteFile> Civitai::files_to_fetch(const ModelRef& ref, const Release& release) {
  if (release.listing.empty()) {
    throw Error(ErrorCode::kNotFound, release.source_uri + " has no model file to download");
  }
  auto weights = std::find_if(release.listing.begin(), release.listing.end(), [](const RemoteFile& file) {
    return is_safe_file_type(file.path) && !is_pickle_file_type(file.path);
  });
  if (weights == release.listing.end()) {
    weights = std::find_if(release.listing.begin(), release.listing.end(),
                           [](const RemoteFile& file) { return is_safe_file_type(file.path); });
  }
  // No file it downloads: this throws the reason the primary one is refused.
  if (weights == release.listing.end()) check_safe_file_type(release.listing.front().path);
  if (weights->digest.hex.empty()) {
    throw Error(ErrorCode::kUnsupported, "CivitAI publishes no SHA256 for '" + weights->path +
                                             "', so its download cannot be verified");
  }
  return {*weights};
}

}  // namespace df::download

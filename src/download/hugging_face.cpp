// Hugging Face Hub: revision listing, pipeline file selection, error wording.
#include "download/hugging_face.h"

#include <algorithm>
#include <regex>

#include "core/error.h"
#include "download/file_selection.h"
#include "registry/model_catalog.h"

namespace df::download {
namespace {

constexpr size_t kShortCommit = 12;

[[noreturn]] void unexpected_answer(const std::string& what) {
  throw Error(ErrorCode::kUnavailable, "Hugging Face sent an unexpected answer: " + what);
}

StatusDescriber hugging_face_statuses(bool has_token) {
  return [has_token](long status, const std::string& subject) {
    if (status == 401 && has_token) {
      return Error(ErrorCode::kForbidden,
                   "Hugging Face rejected the token in HF_TOKEN for " + subject +
                       " (invalid or expired), or the repo does not exist",
                   {{"status", status}});
    }
    if (status == 401) {
      return Error(ErrorCode::kForbidden,
                   "Hugging Face refused " + subject +
                       " without a token: the repo is gated or private (or does not exist); set "
                       "HF_TOKEN to a token with access",
                   {{"status", status}});
    }
    if (status == 403) {
      return Error(ErrorCode::kForbidden,
                   "the token in HF_TOKEN has no access to " + subject +
                       "; accept the model's terms on its Hugging Face page, or use a token "
                       "with access",
                   {{"status", status}});
    }
    if (status == 404) {
      return Error(
          ErrorCode::kNotFound,
          subject + " was not found on Hugging Face (check the repo id, revision and file)",
          {{"status", status}});
    }
    return Error(ErrorCode::kUnavailable,
                 "Hugging Face answered HTTP " + std::to_string(status) + " for " + subject,
                 {{"status", status}});
  };
}

std::string file_stem(const std::string& path) {
  const auto slash = path.rfind('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  const auto dot = name.rfind('.');
  return dot == std::string::npos || dot == 0 ? name : name.substr(0, dot);
}

std::string repo_name(const std::string& repo) {
  const auto slash = repo.rfind('/');
  return slash == std::string::npos ? repo : repo.substr(slash + 1);
}

bool is_single_file_selector(const std::string& selector) {
  return !selector.empty() && selector.find_first_of("*?[") == std::string::npos;
}

RemoteFile remote_file(const nlohmann::json& sibling, const std::string& files_url) {
  if (!sibling.is_object() || !sibling.contains("rfilename") || !sibling["rfilename"].is_string()) {
    unexpected_answer("a file without a name");
  }
  RemoteFile file;
  file.path = sibling["rfilename"].get<std::string>();
  const auto& lfs = sibling.value("lfs", nlohmann::json());
  if (lfs.is_object() && lfs.contains("sha256") && lfs["sha256"].is_string()) {
    file.digest = {DigestKind::kSha256, lfs["sha256"].get<std::string>()};
    file.size = lfs.value("size", sibling.value("size", int64_t{-1}));
  } else if (sibling.contains("blobId") && sibling["blobId"].is_string()) {
    file.digest = {DigestKind::kGitBlobSha1, sibling["blobId"].get<std::string>()};
    file.size = sibling.value("size", int64_t{-1});
  } else {
    unexpected_answer("no hash for '" + file.path + "'");
  }
  if (file.size < 0) unexpected_answer("no size for '" + file.path + "'");
  file.url = files_url + url_encode(file.path, /*keep_slashes=*/true);
  return file;
}

const RemoteFile& listed_file(const Release& release, const std::string& path) {
  const auto found = std::find_if(release.listing.begin(), release.listing.end(),
                                  [&path](const RemoteFile& file) { return file.path == path; });
  if (found == release.listing.end()) unexpected_answer("'" + path + "' is not in the listing");
  return *found;
}

std::vector<std::string> listed_paths(const Release& release) {
  std::vector<std::string> paths;
  for (const auto& file : release.listing) paths.push_back(file.path);
  return paths;
}

[[noreturn]] void not_a_pipeline(const ModelRef& ref, const Release& release) {
  std::string weights;
  int shown = 0;
  for (const auto& file : release.listing) {
    if (file.path.ends_with(".safetensors") && shown++ < 5) weights += "\n  " + file.path;
  }
  throw Error(ErrorCode::kUnsupported,
              format_model_ref(ref) +
                  " has no model_index.json, so it is not a diffusers pipeline; name the file "
                  "to fetch with #file" +
                  (weights.empty() ? std::string(" (it has no .safetensors files)")
                                   : ", one of:" + weights));
}

}  // namespace

Release hugging_face_release(const ModelRef& ref, const nlohmann::json& revision_info,
                             const std::string& endpoint) {
  static const std::regex commit(R"([0-9a-f]{40})");
  if (!revision_info.is_object() || !revision_info.contains("sha") ||
      !revision_info["sha"].is_string() ||
      !std::regex_match(revision_info["sha"].get<std::string>(), commit)) {
    unexpected_answer("no commit for " + format_model_ref(ref));
  }
  if (!revision_info.contains("siblings") || !revision_info["siblings"].is_array()) {
    unexpected_answer("no file list for " + format_model_ref(ref));
  }
  Release release;
  release.source_uri = format_model_ref(ref);
  release.revision = revision_info["sha"].get<std::string>();
  release.name = folder_name_part(is_single_file_selector(ref.selector) ? file_stem(ref.selector)
                                                                        : repo_name(ref.model));
  release.version = release.revision.substr(0, kShortCommit);
  release.kind = "checkpoints";
  const std::string files_url = endpoint + "/" + ref.model + "/resolve/" + release.revision + "/";
  for (const auto& sibling : revision_info["siblings"]) {
    release.listing.push_back(remote_file(sibling, files_url));
  }
  release.extra = {{"source", "huggingface"}, {"repo", ref.model}};
  const auto& card = revision_info.value("cardData", nlohmann::json());
  if (card.is_object() && card.contains("license") && card["license"].is_string()) {
    release.extra["license"] = card["license"];
  }
  return release;
}

HuggingFace::HuggingFace(std::string endpoint, std::string token, RetryPolicy retry)
    : endpoint_(std::move(endpoint)), client_(token, hugging_face_statuses(!token.empty()), retry) {
  while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
}

Release HuggingFace::resolve(const ModelRef& ref) {
  const std::string revision = ref.revision.empty() ? "main" : ref.revision;
  const std::string url =
      endpoint_ + "/api/models/" + ref.model + "/revision/" + url_encode(revision) + "?blobs=true";
  const std::string body = client_.get(url, "hf:" + ref.model + "@" + revision);
  const auto info = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (info.is_discarded()) unexpected_answer("the revision listing is not JSON");
  return hugging_face_release(ref, info, endpoint_);
}

std::vector<RemoteFile> HuggingFace::files_to_fetch(const ModelRef& ref, const Release& release) {
  std::vector<std::string> paths;
  if (!ref.selector.empty()) {
    paths = select_matching_files(ref.selector, listed_paths(release));
    for (const auto& path : paths) check_safe_file_type(path);
  } else {
    const auto has_index =
        std::any_of(release.listing.begin(), release.listing.end(),
                    [](const RemoteFile& file) { return file.path == "model_index.json"; });
    if (!has_index) not_a_pipeline(ref, release);
    const RemoteFile& index_file = listed_file(release, "model_index.json");
    const std::string text =
        client_.get(index_file.url, "model_index.json of " + release.source_uri);
    if (index_file.digest.kind == DigestKind::kGitBlobSha1 &&
        git_blob_sha1(text) != index_file.digest.hex) {
      throw Error(ErrorCode::kCorruptFile, "model_index.json of " + release.source_uri +
                                               " does not match its published hash");
    }
    const auto index = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (index.is_discarded()) {
      throw Error(ErrorCode::kCorruptFile,
                  "model_index.json of " + release.source_uri + " is not JSON");
    }
    paths = select_pipeline_files(index, listed_paths(release));
  }
  std::vector<RemoteFile> files;
  for (const auto& path : paths) {
    if (path == registry::kModelDescriptorFile) continue;  // the folder's own descriptor
    files.push_back(listed_file(release, path));
  }
  return files;
}

}  // namespace df::download

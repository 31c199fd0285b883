// Parsing and printing model references.
#include "download/model_ref.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"

namespace df::download {
namespace {

constexpr std::string_view kHuggingFacePrefix = "hf:";
constexpr std::string_view kCivitaiPrefix = "civitai:";
constexpr std::string_view kRefForms =
    "references look like hf:org/repo[@revision][#file-or-glob] or civitai:model[@version]";

[[noreturn]] void invalid(std::string_view text, const std::string& why) {
  throw Error(ErrorCode::kInvalidArgument, "bad model reference '" + std::string(text) +
                                               "': " + why + " (" + std::string(kRefForms) + ")");
}

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

// "org/name" or "name": name characters, no empty part, no "..".
bool valid_repo_id(std::string_view repo) {
  const auto slash = repo.find('/');
  const auto valid_part = [](std::string_view part) {
    return !part.empty() && part.front() != '.' && part.find("..") == std::string_view::npos &&
           std::all_of(part.begin(), part.end(), is_name_char);
  };
  if (slash == std::string_view::npos) return valid_part(repo);
  return valid_part(repo.substr(0, slash)) && valid_part(repo.substr(slash + 1));
}

// Branch and tag names, commits, and refs like "refs/pr/1".
bool valid_revision(std::string_view revision) {
  return !revision.empty() && revision.find("..") == std::string_view::npos &&
         revision.front() != '/' && std::all_of(revision.begin(), revision.end(), [](char c) {
           return is_name_char(c) || c == '/';
         });
}

// A relative path or glob inside the repo that cannot leave it.
bool valid_selector(std::string_view selector) {
  if (selector.empty() || selector.front() == '/' ||
      selector.find('\\') != std::string_view::npos) {
    return false;
  }
  size_t start = 0;
  while (start <= selector.size()) {
    const auto end = std::min(selector.find('/', start), selector.size());
    const auto part = selector.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return std::none_of(selector.begin(), selector.end(),
                      [](char c) { return std::iscntrl(static_cast<unsigned char>(c)); });
}

bool valid_civitai_model(std::string_view model) {
  return all_digits(model) ||
         (!model.empty() && std::all_of(model.begin(), model.end(), [](char c) {
           return std::islower(static_cast<unsigned char>(c)) ||
                  std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '_';
         }));
}

ModelRef parse_hugging_face(std::string_view text, std::string_view rest) {
  ModelRef ref;
  ref.source = ModelSource::kHuggingFace;
  if (const auto hash = rest.find('#'); hash != std::string_view::npos) {
    ref.selector = std::string(rest.substr(hash + 1));
    rest = rest.substr(0, hash);
    if (!valid_selector(ref.selector))
      invalid(text, "the part after '#' must be a file path or glob inside the repo");
  }
  if (const auto at = rest.find('@'); at != std::string_view::npos) {
    ref.revision = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
    if (!valid_revision(ref.revision))
      invalid(text, "the revision after '@' is not a branch, tag or commit");
  }
  ref.model = std::string(rest);
  if (!valid_repo_id(ref.model)) invalid(text, "'" + ref.model + "' is not a Hugging Face repo id");
  return ref;
}

ModelRef parse_civitai(std::string_view text, std::string_view rest) {
  ModelRef ref;
  ref.source = ModelSource::kCivitai;
  if (rest.find('#') != std::string_view::npos) invalid(text, "CivitAI references name no files");
  if (const auto at = rest.find('@'); at != std::string_view::npos) {
    ref.revision = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
    if (!all_digits(ref.revision))
      invalid(text, "the version after '@' must be a numeric version id");
  }
  ref.model = std::string(rest);
  if (!valid_civitai_model(ref.model)) {
    invalid(text, "the model must be a numeric id or a slug (lowercase letters, digits, '-')");
  }
  return ref;
}

}  // namespace

bool looks_like_model_ref(std::string_view text) {
  return text.starts_with(kHuggingFacePrefix) || text.starts_with(kCivitaiPrefix);
}

ModelRef parse_model_ref(std::string_view text) {
  if (text.starts_with(kHuggingFacePrefix)) {
    return parse_hugging_face(text, text.substr(kHuggingFacePrefix.size()));
  }
  if (text.starts_with(kCivitaiPrefix))
    return parse_civitai(text, text.substr(kCivitaiPrefix.size()));
  invalid(text, "unknown source");
}

std::string format_model_ref(const ModelRef& ref) {
  if (ref.source == ModelSource::kCivitai) {
    return std::string(kCivitaiPrefix) + ref.model +
           (ref.revision.empty() ? "" : "@" + ref.revision);
  }
  return std::string(kHuggingFacePrefix) + ref.model + "@" +
         (ref.revision.empty() ? "main" : ref.revision) +
         (ref.selector.empty() ? "" : "#" + ref.selector);
}

bool model_ref_matches(const ModelRef& asked, const ModelRef& installed,
                       const std::string& installed_revision) {
  if (asked.source != installed.source || asked.model != installed.model ||
      asked.selector != installed.selector) {
    return false;
  }
  return asked.revision.empty() || asked.revision == installed.revision ||
         asked.revision == installed_revision;
}

}  // namespace df::download

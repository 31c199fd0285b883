// The seam between the downloader and a model source (Hugging Face, CivitAI): resolve a
// reference to a release, then say which of its files to fetch; fetching, verifying and
// describing are the same for every source.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "download/file_digest.h"
#include "download/http_client.h"
#include "download/model_ref.h"

namespace df::download {

// A file the source offers, as its listing describes it.
struct RemoteFile {
  std::string path;  // relative to the model's folder, '/' separators
  std::string url;   // where to GET its bytes
  int64_t size = 0;
  bool size_exact = true;  // false when the source rounds it (CivitAI lists kilobytes)
  ExpectedDigest digest;
};

// What a reference resolved to: enough to place the model and to tell whether it is installed,
// learned from the source's metadata without transferring any file.
struct Release {
  std::string source_uri;  // the reference, formatted (format_model_ref)
  std::string revision;    // the commit sha, the version id
  std::string name;        // folder name part: <name>@<version>
  std::string version;
  std::string kind = "checkpoints";                 // the folder under the models root
  std::string family;                               // "" when the source does not say
  std::vector<RemoteFile> listing;                  // every file of the release
  nlohmann::json extra = nlohmann::json::object();  // source details for the registry entry
};

class Source {
 public:
  virtual ~Source() = default;
  // Asks the source what `ref` names. Throws Error (kNotFound, kForbidden, kUnavailable, ...)
  // with a message naming the reference.
  virtual Release resolve(const ModelRef& ref) = 0;
  // The files of the release to fetch (reading small index files from the source if needed).
  virtual std::vector<RemoteFile> files_to_fetch(const ModelRef& ref, const Release& release) = 0;
  // The client whose token and error wording fit the source's URLs.
  virtual const HttpClient& client() const = 0;
};

// `text` made safe as a folder name: letters, digits, '.', '-' and '_' kept, runs of anything
// else turned into one '-', no leading '.' or '-'; "model" when nothing is left.
std::string folder_name_part(const std::string& text);

// `text` percent-encoded for a URL, every byte but letters, digits and -._~ (and '/' when
// `keep_slashes`, for paths).
std::string url_encode(const std::string& text, bool keep_slashes = false);

}  // namespace df::download

// Installs a model from a source: resolve, fetch in parallel into staging, verify, move into the
// layout, register.
#pragma once

#include <string>
#include <vector>

#include "core/model.h"
#include "download/download_progress.h"
#include "download/model_layout.h"
#include "download/source.h"
#include "registry/model_registry.h"

namespace df::download {

// Where and how to install, beyond what the source says.
struct InstallOptions {
  std::string kind;     // the folder under the models root ("": the source's, e.g. checkpoints)
  std::string name;     // the model folder's name part ("": the source's)
  std::string version;  // the model folder's version part ("": the source's)
  bool overwrite = false;  // fetch it again although that release is installed
};

struct InstallResult {
  Model model;
  bool already_installed = false;  // nothing was transferred
};

class ModelInstaller {
 public:
  // `jobs`: files transferred at once (at least 1).
  ModelInstaller(ModelLayout layout, registry::ModelRegistry& registry, DownloadObserver& progress,
                 int jobs);

  // Resolves `ref`; when that release is installed already, only makes sure the registry has it.
  // Otherwise fetches its files into the staging folder (resuming what an earlier attempt left
  // there), verifies each against its published size and hash (a mismatch moves the file to the
  // quarantine folder and throws Error(kCorruptFile) naming it with both hashes), moves the
  // folder into place when all are verified and registers the model. Throws Error(kConflict) when
  // the model's folder holds something else (unless `options.overwrite`, which replaces it).
  // Throws Error(kInvalidArgument) for a kind, name or version that is no folder name.
  InstallResult install(Source& source, const ModelRef& ref, const InstallOptions& options = {});

  // Re-hashes the installed files of what `ref` names against the hashes recorded when it was
  // installed; returns the model. Throws Error(kNotFound) when it is not installed,
  // Error(kCorruptFile) listing the files that differ.
  Model verify(Source& source, const ModelRef& ref, const InstallOptions& options = {});

 private:
  // The release `ref` names, placed as `options` says.
  Release resolve(Source& source, const ModelRef& ref, const InstallOptions& options);
  std::optional<Model> installed_release(const Release& release, const std::string& model_dir);
  std::vector<ModelFile> fetch_all(const Source& source, const Release& release,
                                   const std::vector<RemoteFile>& files,
                                   const std::string& staging);
  ModelFile fetch_one(const Source& source, const Release& release, const RemoteFile& file,
                      const std::string& staging, const std::function<bool()>& canceled);
  // Verifies a finished part file and renames it to its name; quarantines it and throws on a
  // mismatch.
  ModelFile accept_file(const Release& release, const RemoteFile& file, const std::string& part,
                        const std::string& final_path);

  ModelLayout layout_;
  registry::ModelRegistry& registry_;
  DownloadObserver& progress_;
  int jobs_;
};

}  // namespace df::download

// The download pipeline from a reference to a registered model.
#include "download/model_installer.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "core/error.h"
#include "download/file_digest.h"
#include "download/file_selection.h"
#include "engine/tensor_file.h"

namespace df::download {

namespace fs = std::filesystem;

namespace {

int64_t file_size_or_zero(const std::string& path) {
  std::error_code error;
  const auto size = fs::file_size(path, error);
  return error ? 0 : static_cast<int64_t>(size);
}

// Moves `from` to `to` (same file system), replacing what is there; throws Error(kIo).
void move_path(const fs::path& from, const fs::path& to) {
  std::error_code error;
  fs::create_directories(to.parent_path(), error);
  if (fs::is_regular_file(to)) fs::remove(to, error);
  fs::rename(from, to, error);
  if (error) {
    throw Error(ErrorCode::kIo,
                "cannot move '" + from.string() + "' to '" + to.string() + "': " + error.message());
  }
}

// Removes files in the staging folder that are not part of this download (left by an earlier
// attempt that fetched another selection under the same id).
void prune_staging(const std::string& staging, const std::vector<ModelFile>& fetched) {
  std::set<fs::path> keep;
  for (const auto& file : fetched) keep.insert((fs::path(staging) / file.path).lexically_normal());
  std::vector<fs::path> stale;
  for (const auto& entry : fs::recursive_directory_iterator(staging)) {
    if (entry.is_regular_file() && !keep.contains(entry.path().lexically_normal())) {
      stale.push_back(entry.path());
    }
  }
  for (const auto& path : stale) fs::remove(path);
}

// Whether two references to the same revision ask for the same files. A CivitAI version id names
// one release whichever way the model was named (id or slug).
bool same_files_asked(const ModelRef& a, const ModelRef& b) {
  if (a.source != b.source) return false;
  return a.source == ModelSource::kCivitai || (a.model == b.model && a.selector == b.selector);
}

bool digest_accepts(const FileDigest& digest, const RemoteFile& file) {
  return (!file.size_exact || digest.size == file.size) && digest_matches(digest, file.digest);
}

// A pickle is installed only when the weights reader, which runs no code, accepts its bytes; a
// refused file is deleted and the download fails with the reader's reason.
void check_pickle_weights(const Release& release, const RemoteFile& file, const std::string& part) {
  if (!is_pickle_file_type(file.path)) return;
  try {
    engine::TensorFile::open(part);
  } catch (const Error& error) {
    std::error_code ignored;
    fs::remove(part, ignored);
    throw Error(error.code(),
                "'" + file.path + "' of " + release.source_uri + " was refused and deleted: " +
                    error.what(),
                {{"file", file.path}});
  }
}

FileDigest digest_for(const std::string& path, const RemoteFile& file) {
  return digest_file(path, file.digest.kind == DigestKind::kGitBlobSha1);
}

}  // namespace

ModelInstaller::ModelInstaller(ModelLayout layout, registry::ModelRegistry& registry,
                               DownloadObserver& progress, int jobs)
    : layout_(std::move(layout)),
      registry_(registry),
      progress_(progress),
      jobs_(std::max(1, jobs)) {}

Release ModelInstaller::resolve(Source& source, const ModelRef& ref, const InstallOptions& options) {
  Release release = source.resolve(ref);
  const auto place = [](std::string& field, const std::string& value, const char* what) {
    if (value.empty()) return;
    if (folder_name_part(value) != value || value.size() > 128) {
      throw Error(ErrorCode::kInvalidArgument,
                  std::string(what) + " '" + value +
                      "' is not a folder name (letters, digits, '.', '-', '_'; at most 128)");
    }
    field = value;
  };
  place(release.kind, options.kind, "kind");
  place(release.name, options.name, "name");
  place(release.version, options.version, "version");
  return release;
}

InstallResult ModelInstaller::install(Source& source, const ModelRef& ref,
                                      const InstallOptions& options) {
  const Release release = resolve(source, ref, options);
  const std::string id = model_id(release);
  const std::string model_dir = layout_.model_dir(release.kind, id);
  if (auto installed = installed_release(release, model_dir); installed && !options.overwrite) {
    const auto entry = registry_.find(id);
    if (!entry || !entry->installed) registry_.add_installed(*installed);
    return {*installed, true};
  }
  if (options.overwrite && fs::exists(model_dir)) {
    fs::remove_all(model_dir);  // fetched again below; the registry entry is replaced then
  } else if (fs::exists(model_dir)) {
    throw Error(ErrorCode::kConflict,
                "'" + model_dir + "' already holds another or incomplete copy of " + id +
                    "; remove it (dreamforge model remove " + id + ") and download again");
  }
  const auto files = source.files_to_fetch(ref, release);
  const std::string staging = layout_.staging_dir(release.kind, id);
  const auto fetched = fetch_all(source, release, files, staging);
  prune_staging(staging, fetched);
  move_path(staging, model_dir);
  Model model = describe_download(release, fetched, model_dir, layout_.kind_dir(release.kind));
  try {
    registry_.add_installed(model);
  } catch (...) {
    move_path(model_dir, staging);  // not loadable: out of the layout again, files kept
    throw;
  }
  return {model, false};
}

Model ModelInstaller::verify(Source& source, const ModelRef& ref, const InstallOptions& options) {
  const Release release = resolve(source, ref, options);
  const std::string id = model_id(release);
  const std::string model_dir = layout_.model_dir(release.kind, id);
  const auto recorded = read_descriptor(model_dir);
  if (!recorded) {
    throw Error(ErrorCode::kNotFound, release.source_uri + " is not installed (no " + id +
                                          " with recorded hashes under " + release.kind + ")");
  }
  const auto problems = check_model_files(model_dir, *recorded, /*rehash=*/true);
  if (!problems.empty()) {
    std::string list;
    for (const auto& problem : problems) list += (list.empty() ? "" : "; ") + problem;
    throw Error(ErrorCode::kCorruptFile, id + " has files that do not match their recorded hashes: " + list,
                {{"problems", problems}});
  }
  return *recorded;
}

std::optional<Model> ModelInstaller::installed_release(const Release& release,
                                                       const std::string& model_dir) {
  auto model = read_descriptor(model_dir);
  if (!model || model->revision != release.revision || model->source_uri.empty())
    return std::nullopt;
  try {
    if (!same_files_asked(parse_model_ref(release.source_uri),
                          parse_model_ref(model->source_uri))) {
      return std::nullopt;
    }
  } catch (const Error&) {
    return std::nullopt;
  }
  if (!check_model_files(model_dir, *model, /*rehash=*/false).empty()) return std::nullopt;
  return model;
}

std::vector<ModelFile> ModelInstaller::fetch_all(const Source& source, const Release& release,
                                                 const std::vector<RemoteFile>& files,
                                                 const std::string& staging) {
  int64_t total = 0;
  for (const auto& file : files) total += file.size;
  progress_.begin(model_id(release), static_cast<int>(files.size()), total);

  std::vector<ModelFile> fetched(files.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex error_mutex;
  std::exception_ptr first_error;
  const auto canceled = [&] { return stop.load() || progress_.canceled(); };
  const auto work = [&] {
    while (!stop) {
      const size_t index = next++;
      if (index >= files.size()) return;
      try {
        fetched[index] = fetch_one(source, release, files[index], staging, canceled);
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
        stop = true;
      }
    }
  };
  {
    std::vector<std::jthread> workers;
    const size_t count = std::min(files.size(), static_cast<size_t>(jobs_));
    for (size_t i = 0; i < count; ++i) workers.emplace_back(work);
  }
  progress_.finish();
  if (first_error) std::rethrow_exception(first_error);
  if (progress_.canceled()) {  // the files fetched stay in staging for a later download
    throw Error(ErrorCode::kCanceled, "the download of " + release.source_uri + " was canceled");
  }
  return fetched;
}

ModelFile ModelInstaller::fetch_one(const Source& source, const Release& release,
                                    const RemoteFile& file, const std::string& staging,
                                    const std::function<bool()>& canceled) {
  const fs::path final_path = fs::path(staging) / file.path;
  const std::string part = final_path.string() + ".part";
  fs::create_directories(final_path.parent_path());
  if (fs::is_regular_file(final_path)) {  // verified by an earlier attempt: check it still is
    const auto digest = digest_for(final_path.string(), file);
    if (digest_accepts(digest, file)) {
      progress_.file_finished(file.path, digest.size, /*transferred=*/false);
      return {file.path, digest.size, digest.sha256};
    }
    fs::remove(final_path);
  }
  progress_.file_started(file.path, file.size, file_size_or_zero(part));
  TransferCallbacks callbacks;
  callbacks.progress = [this, &file](int64_t bytes) { progress_.file_progress(file.path, bytes); };
  callbacks.retrying = [this, &file](const std::string& why, double delay_s) {
    progress_.file_retrying(file.path, why, delay_s);
  };
  callbacks.canceled = canceled;
  source.client().download(file.url, part, "'" + file.path + "' of " + release.source_uri,
                           callbacks);
  return accept_file(release, file, part, final_path.string());
}

ModelFile ModelInstaller::accept_file(const Release& release, const RemoteFile& file,
                                      const std::string& part, const std::string& final_path) {
  const auto digest = digest_for(part, file);
  if (digest_accepts(digest, file)) {
    check_pickle_weights(release, file, part);
    move_path(part, final_path);
    progress_.file_finished(file.path, digest.size, /*transferred=*/true);
    return {file.path, digest.size, digest.sha256};
  }
  const fs::path quarantined =
      fs::path(layout_.quarantine_dir(release.kind, model_id(release))) / file.path;
  move_path(part, quarantined);
  nlohmann::json details = {{"file", file.path}, {"quarantined", quarantined.string()}};
  if (file.size_exact && digest.size != file.size) {
    details["expected_size"] = file.size;
    details["actual_size"] = digest.size;
    throw Error(ErrorCode::kCorruptFile,
                "'" + file.path + "' of " + release.source_uri + " has " +
                    std::to_string(digest.size) + " bytes, the source says " +
                    std::to_string(file.size) + "; moved to " + quarantined.string(),
                details);
  }
  const std::string kind = digest_kind_name(file.digest.kind);
  const std::string& actual = digest_of_kind(digest, file.digest.kind);
  details["hash"] = kind;
  details["expected"] = file.digest.hex;
  details["actual"] = actual;
  throw Error(ErrorCode::kCorruptFile,
              "'" + file.path + "' of " + release.source_uri + " does not match its published " +
                  kind + ": expected " + file.digest.hex + ", got " + actual + "; moved to " +
                  quarantined.string(),
              details);
}

}  // namespace df::download

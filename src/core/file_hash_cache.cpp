// The persistent file-hash cache: a small JSON map, rewritten atomically on every new entry.
#include "core/file_hash_cache.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/sha256.h"

namespace df {
namespace {

namespace fs = std::filesystem;

fs::path cache_file() {
  if (const char* dir = std::getenv("DREAMFORGE_CACHE_DIR"); dir && *dir) {
    return fs::path(dir) / "file-hashes.json";
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
    return fs::path(xdg) / "dreamforge" / "file-hashes.json";
  }
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : "/tmp") / ".cache" / "dreamforge" / "file-hashes.json";
}

nlohmann::json read_cache(const fs::path& file) {
  std::ifstream in(file);
  nlohmann::json cache = in ? nlohmann::json::parse(in, nullptr, false) : nlohmann::json::object();
  return cache.is_object() ? cache : nlohmann::json::object();
}

// Identifies one version of the file: a changed size or mtime means the digest must be redone.
std::string stamp_of(const fs::path& path) {
  const auto mtime = fs::last_write_time(path).time_since_epoch().count();
  return std::to_string(fs::file_size(path)) + ":" + std::to_string(mtime);
}

}  // namespace

std::string cached_file_sha256(const std::string& path_text) {
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  std::error_code ec;
  const fs::path path = fs::canonical(path_text, ec);
  if (ec) throw Error(ErrorCode::kIo, "cannot read '" + path_text + "': " + ec.message());
  const std::string stamp = stamp_of(path);
  const fs::path file = cache_file();
  nlohmann::json cache = read_cache(file);
  const auto it = cache.find(path.string());
  if (it != cache.end() && it->is_object() && it->value("stamp", "") == stamp) {
    return it->value("sha256", "");
  }
  const std::string digest = sha256_file(path.string());
  cache[path.string()] = {{"stamp", stamp}, {"sha256", digest}};
  try {
    fs::create_directories(file.parent_path());
    const std::string text = cache.dump(1);
    write_file_atomically(file.string(), std::vector<uint8_t>(text.begin(), text.end()));
  } catch (const std::exception&) {
    // A read-only or missing cache folder only costs recomputing the digest next time.
  }
  return digest;
}

}  // namespace df

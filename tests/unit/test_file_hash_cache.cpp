// Unit tests for the persistent file-hash cache.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_hash_cache.h"
#include "core/sha256.h"

namespace df {
namespace {

namespace fs = std::filesystem;

class FileHashCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("df-hash-cache-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "cache");
    ::setenv("DREAMFORGE_CACHE_DIR", (root_ / "cache").c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("DREAMFORGE_CACHE_DIR");
    fs::remove_all(root_);
  }
  std::string write(const std::string& name, const std::string& content) {
    std::ofstream(root_ / name, std::ios::binary) << content;
    return (root_ / name).string();
  }
  nlohmann::json cache() {
    std::ifstream in(root_ / "cache" / "file-hashes.json");
    return nlohmann::json::parse(in);
  }
  fs::path root_;
};

TEST_F(FileHashCacheTest, ComputesOnceAndRemembers) {
  const std::string path = write("model.safetensors", "abc");
  EXPECT_EQ(cached_file_sha256(path), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // The remembered digest is served while size and mtime are unchanged (proved by editing the
  // cache entry: a recomputation would not return the edited value).
  nlohmann::json entries = cache();
  entries[fs::canonical(path).string()]["sha256"] = "remembered";
  std::ofstream(root_ / "cache" / "file-hashes.json") << entries.dump();
  EXPECT_EQ(cached_file_sha256(path), "remembered");
}

TEST_F(FileHashCacheTest, RecomputesWhenTheFileChanges) {
  const std::string path = write("model.safetensors", "abc");
  cached_file_sha256(path);
  write("model.safetensors", "abcd");
  fs::last_write_time(path, fs::last_write_time(path) + std::chrono::seconds(5));
  const std::string data = "abcd";
  EXPECT_EQ(cached_file_sha256(path), sha256_hex(data.data(), data.size()));
}

TEST_F(FileHashCacheTest, WorksWithoutAWritableCache) {
  ::setenv("DREAMFORGE_CACHE_DIR", "/proc/no-such-dir", 1);
  const std::string path = write("m.bin", "abc");
  EXPECT_EQ(cached_file_sha256(path), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(FileHashCacheTest, MissingFileIsAnIoError) {
  try {
    cached_file_sha256((root_ / "missing").string());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
  }
}

}  // namespace
}  // namespace df

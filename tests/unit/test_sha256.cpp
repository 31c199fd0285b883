// Unit tests for SHA-256 digests of memory and files.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/sha256.h"
#include "test_graph_support.h"

namespace df {
namespace {

namespace fs = std::filesystem;

std::string sha256_of(const std::string& text) { return sha256_hex(text.data(), text.size()); }

// A file in a fresh temporary directory, removed with it.
class Sha256File : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "df-sha256-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::vector<char>& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path;
  }

  fs::path dir_;
};

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_of(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_of("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_of("The quick brown fox jumps over the lazy dog"),
            "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592");
  EXPECT_EQ(sha256_of(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, HashesBinaryBytes) {
  std::vector<unsigned char> all(256);
  for (int i = 0; i < 256; ++i) all[i] = static_cast<unsigned char>(i);
  EXPECT_EQ(sha256_hex(all.data(), all.size()),
            "40aff2e9d2d8922e47afd4648e6967497158785fbd1da870e7110266bf944880");
}

TEST_F(Sha256File, EmptyFileHasTheEmptyDigest) {
  EXPECT_EQ(sha256_file(write("empty", {})), sha256_of(""));
}

// Larger than the streaming buffer, so the digest spans several reads.
TEST_F(Sha256File, FileDigestEqualsMemoryDigest) {
  std::vector<char> bytes((5 << 19) + 12345);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
  const std::string path = write("model.safetensors", bytes);
  EXPECT_EQ(sha256_file(path), sha256_hex(bytes.data(), bytes.size()));
}

TEST_F(Sha256File, MissingFileFailsWithIo) {
  const Error e = graph_test::expect_error(
      [&] { sha256_file((dir_ / "absent.safetensors").string()); }, ErrorCode::kIo);
  EXPECT_NE(std::string(e.what()).find("absent.safetensors"), std::string::npos) << e.what();
}

TEST_F(Sha256File, DirectoryFailsWithIo) {
  graph_test::expect_error([&] { sha256_file(dir_.string()); }, ErrorCode::kIo);
}

}  // namespace
}  // namespace df

// File digests through OpenSSL's EVP interface.
#include "download/file_digest.h"

#include <openssl/evp.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <vector>

#include "core/error.h"

namespace df::download {
namespace {

class Digest {
 public:
  explicit Digest(const EVP_MD* algorithm) : ctx_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), algorithm, nullptr) != 1) {
      throw Error(ErrorCode::kInternal, "cannot initialise a message digest");
    }
  }
  void update(const void* data, size_t size) { EVP_DigestUpdate(ctx_.get(), data, size); }
  std::string hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(ctx_.get(), digest, &length);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < length; ++i) {
      out += kHex[digest[i] >> 4];
      out += kHex[digest[i] & 15];
    }
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

std::string git_blob_header(int64_t size) { return "blob " + std::to_string(size) + '\0'; }

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

}  // namespace

FileDigest digest_file(const std::string& path, bool with_git_blob_sha1) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(ErrorCode::kIo, "cannot read '" + path + "'");
  FileDigest result;
  result.size = static_cast<int64_t>(in.tellg());
  in.seekg(0);
  Digest sha256(EVP_sha256());
  Digest sha1(EVP_sha1());
  if (with_git_blob_sha1) {
    const std::string header = git_blob_header(result.size);
    sha1.update(header.data(), header.size());
  }
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto got = static_cast<size_t>(in.gcount());
    sha256.update(buffer.data(), got);
    if (with_git_blob_sha1) sha1.update(buffer.data(), got);
  }
  if (in.bad()) throw Error(ErrorCode::kIo, "cannot read '" + path + "'");
  result.sha256 = sha256.hex();
  if (with_git_blob_sha1) result.git_blob_sha1 = sha1.hex();
  return result;
}

std::string git_blob_sha1(const std::string& bytes) {
  Digest sha1(EVP_sha1());
  const std::string header = git_blob_header(static_cast<int64_t>(bytes.size()));
  sha1.update(header.data(), header.size());
  sha1.update(bytes.data(), bytes.size());
  return sha1.hex();
}

const std::string& digest_of_kind(const FileDigest& digest, DigestKind kind) {
  return kind == DigestKind::kSha256 ? digest.sha256 : digest.git_blob_sha1;
}

bool digest_matches(const FileDigest& digest, const ExpectedDigest& expected) {
  const std::string& actual = digest_of_kind(digest, expected.kind);
  return !actual.empty() && actual == lowercase(expected.hex);
}

std::string digest_kind_name(DigestKind kind) {
  return kind == DigestKind::kSha256 ? "sha256" : "git blob sha1";
}

}  // namespace df::download

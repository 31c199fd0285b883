// What a downloaded file's bytes hash to, and whether that is what its source published.
#pragma once

#include <cstdint>
#include <string>

namespace df::download {

enum class DigestKind {
  kSha256,      // hex sha256 of the bytes (LFS files, CivitAI files)
  kGitBlobSha1  // git's blob id: sha1 of "blob <size>\0" + bytes (small Hugging Face files)
};

// A hash the source published for a file, lowercase hex.
struct ExpectedDigest {
  DigestKind kind = DigestKind::kSha256;
  std::string hex;
};

struct FileDigest {
  int64_t size = 0;
  std::string sha256;
  std::string git_blob_sha1;  // "" unless asked for
};

// Reads the file once. Throws Error(kIo) when it cannot be read.
FileDigest digest_file(const std::string& path, bool with_git_blob_sha1);

// Git's blob id of `bytes`.
std::string git_blob_sha1(const std::string& bytes);

// The digest of the kind `expected` names ("" when it was not computed).
const std::string& digest_of_kind(const FileDigest& digest, DigestKind kind);

// Whether the digest equals the published one (case-insensitively, as CivitAI prints upper case).
bool digest_matches(const FileDigest& digest, const ExpectedDigest& expected);

// "sha256" or "git blob sha1", for messages.
std::string digest_kind_name(DigestKind kind);

}  // namespace df::download

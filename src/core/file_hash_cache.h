// SHA-256 of large files (model checkpoints), remembered across processes by path, size and mtime.
#pragma once

#include <string>

namespace df {

// The file's sha256 in hex. Looked up in, and added to, `file-hashes.json` in the cache folder
// ($DREAMFORGE_CACHE_DIR, else $XDG_CACHE_HOME/dreamforge, else ~/.cache/dreamforge); an entry
// counts only while the file's size and modification time are unchanged. When the cache cannot
// be read or written the digest is computed and returned all the same. Throws Error(kIo) when the
// file itself cannot be read.
std::string cached_file_sha256(const std::string& path);

}  // namespace df

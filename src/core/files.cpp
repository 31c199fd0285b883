// Atomic writes, whole-file reads and confined path joins.
#include "core/files.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

namespace df {

namespace fs = std::filesystem;

void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::string temp = path + ".tmp-XXXXXX";  // mkstemp's pattern: a unique name per writer
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) {
    throw Error(ErrorCode::kIo, "cannot create a temporary file beside '" + path + "': " +
                                    std::strerror(errno), {{"path", path}});
  }
  int failure = 0;
  size_t done = 0;
  while (failure == 0 && done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno != EINTR) failure = errno;
    if (n > 0) done += static_cast<size_t>(n);
  }
  if (failure == 0 && (::fchmod(fd, 0644) != 0 || ::fsync(fd) != 0)) failure = errno;
  if (::close(fd) != 0 && failure == 0) failure = errno;
  if (failure == 0 && ::rename(temp.c_str(), path.c_str()) != 0) failure = errno;
  if (failure != 0) {
    ::unlink(temp.c_str());
    throw Error(ErrorCode::kIo, "cannot write '" + path + "': " + std::strerror(failure),
                {{"path", path}});
  }
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kIo, "cannot read '" + path + "'");
  try {
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
  } catch (const std::ios_base::failure& e) {  // a read error, e.g. the path is a directory
    throw Error(ErrorCode::kIo, "cannot read '" + path + "': " + e.code().message());
  }
}

std::optional<std::string> read_config_text(const std::string& path, const std::string& what) {
  std::error_code error;
  if (!fs::exists(path, error)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) throw Error(ErrorCode::kIo, "cannot read the " + what + " " + path);
  return text.str();
}

std::string join_inside(const std::string& root, const std::string& relative, const std::string& what) {
  const fs::path rel(relative);
  if (rel.is_absolute()) {
    throw Error(ErrorCode::kInvalidArgument, what + " '" + relative + "' must be a relative path");
  }
  fs::path base = fs::weakly_canonical(fs::absolute(root));
  if (!base.has_filename()) base = base.parent_path();  // "dir/" that does not exist (yet)
  const fs::path full = fs::weakly_canonical(base / rel);
  auto [base_end, ignored] = std::mismatch(base.begin(), base.end(), full.begin(), full.end());
  if (base_end != base.end()) {
    throw Error(ErrorCode::kInvalidArgument, what + " '" + relative + "' leaves " + base.string());
  }
  return full.string();
}

}  // namespace df

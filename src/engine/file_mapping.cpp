// Read-only memory maps of whole files.
#include "engine/file_mapping.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace df::engine {

FileMapping map_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw Error(ErrorCode::kIo, "cannot open '" + path + "': " + std::strerror(errno),
                {{"path", path}});
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(ErrorCode::kIo, "'" + path + "' is not a regular file", {{"path", path}});
  }
  const auto size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return {};
  }
  void* mapping = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapping == MAP_FAILED) {
    throw Error(ErrorCode::kIo, "cannot map '" + path + "': " + std::strerror(errno),
                {{"path", path}});
  }
  FileMapping file;
  file.owner = std::shared_ptr<const void>(
      mapping, [size](const void* m) { ::munmap(const_cast<void*>(m), size); });
  file.bytes = {static_cast<const uint8_t*>(mapping), size};
  return file;
}

}  // namespace df::engine

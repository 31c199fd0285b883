// Finds tokenizer data installed beside the executables.
#include "engine/clip_vocab_location.h"

#include <filesystem>

namespace df::engine {

namespace fs = std::filesystem;

namespace {

fs::path share_dir_beside(const std::string& executable, const std::string& name) {
  return (fs::path(executable).parent_path() / ".." / "share" / "dreamforge" / name)
      .lexically_normal();
}

std::string running_executable() {
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  return error ? "" : self.string();
}

}  // namespace

std::string clip_vocab_dir_beside(const std::string& executable) {
  const fs::path dir = share_dir_beside(executable, "clip");
  std::error_code error;
  const bool complete =
      fs::is_regular_file(dir / "vocab.json", error) && fs::is_regular_file(dir / "merges.txt", error);
  return complete ? dir.string() : "";
}

std::string installed_clip_vocab_dir() {
  const std::string self = running_executable();
  return self.empty() ? "" : clip_vocab_dir_beside(self);
}

std::string installed_data_dir(const std::string& name) {
  const std::string self = running_executable();
  return self.empty() ? "" : share_dir_beside(self, name).string();
}

}  // namespace df::engine

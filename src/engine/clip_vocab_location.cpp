// Finds the standard CLIP vocabulary installed beside the executables.
#include "engine/clip_vocab_location.h"

#include <filesystem>

namespace df::engine {

namespace fs = std::filesystem;

std::string clip_vocab_dir_beside(const std::string& executable) {
  const fs::path dir =
      (fs::path(executable).parent_path() / ".." / "share" / "dreamforge" / "clip").lexically_normal();
  std::error_code error;
  const bool complete =
      fs::is_regular_file(dir / "vocab.json", error) && fs::is_regular_file(dir / "merges.txt", error);
  return complete ? dir.string() : "";
}

std::string installed_clip_vocab_dir() {
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  return error ? "" : clip_vocab_dir_beside(self.string());
}

}  // namespace df::engine

// Latent previews as JPEG files a DGX-Pixels client opens: <root>/<job id>/<step>.jpg.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace df::pixels {

class PreviewFiles {
 public:
  // `root` is <data>/temp/previews; what an earlier run left there is removed.
  explicit PreviewFiles(std::string root);

  // Writes a job's preview at `step` (replacing one written at the same step) and returns its path.
  // Throws Error(kInvalidArgument) for a job id that is not one folder name ("..", "a/b"),
  // Error(kIo) when the file cannot be written.
  std::string write(const std::string& job_id, int step, const std::vector<uint8_t>& jpeg) const;
  // Removes a job's previews (nothing when it has none).
  void remove(const std::string& job_id) const;

 private:
  // Throws Error(kInvalidArgument) for an id that is not one folder name.
  std::filesystem::path folder_of(const std::string& job_id) const;

  std::string root_;
};

}  // namespace df::pixels

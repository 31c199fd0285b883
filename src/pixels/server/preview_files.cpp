// The preview folder of each job.
#include "pixels/server/preview_files.h"

#include <filesystem>

#include "core/error.h"
#include "core/files.h"

namespace df::pixels {

namespace fs = std::filesystem;

namespace {

bool is_folder_name(const std::string& job_id) {
  return !job_id.empty() && job_id != "." && job_id != ".." &&
         job_id.find('/') == std::string::npos;
}

}  // namespace

PreviewFiles::PreviewFiles(std::string root) : root_(std::move(root)) {
  std::error_code error;
  fs::remove_all(root_, error);
  fs::create_directories(root_, error);
  if (error) throw Error(ErrorCode::kIo, "cannot create " + root_ + ": " + error.message());
}

std::string PreviewFiles::write(const std::string& job_id, int step,
                                const std::vector<uint8_t>& jpeg) const {
  const fs::path folder = folder_of(job_id);
  std::error_code error;
  fs::create_directories(folder, error);
  if (error) throw Error(ErrorCode::kIo, "cannot create " + folder.string() + ": " + error.message());
  const std::string path = (folder / (std::to_string(step) + ".jpg")).string();
  write_file_atomically(path, jpeg);
  return path;
}

void PreviewFiles::remove(const std::string& job_id) const {
  if (!is_folder_name(job_id)) return;  // it has no folder
  std::error_code error;
  fs::remove_all(folder_of(job_id), error);
}

std::filesystem::path PreviewFiles::folder_of(const std::string& job_id) const {
  if (!is_folder_name(job_id)) {
    throw Error(ErrorCode::kInvalidArgument, "job id '" + job_id + "' cannot name a folder");
  }
  return fs::path(root_) / job_id;
}

}  // namespace df::pixels

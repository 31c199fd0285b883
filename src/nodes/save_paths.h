// ComfyUI's save-path rule (folder_paths.get_save_image_path) for nodes that write output files.
#pragma once

#include <filesystem>
#include <string>

namespace df::nodes {

// Where a save node writes: the prefix may name a subfolder (kept inside the root), %width% and
// %height% are filled in, and the counter continues after the highest "<base>_<digits>" there.
struct SaveTarget {
  std::filesystem::path folder;
  std::string subfolder;  // relative to the root, '/'-separated; empty for the root itself
  std::string base;
  int counter = 1;
};

// Creates the folder. Throws Error(kInvalidArgument) for a prefix naming no file or leaving root.
SaveTarget save_target(const std::string& root, const std::string& prefix, int width, int height);

// "<base>_<counter, 5 digits>_.<extension>", ComfyUI's file name for the counter's file.
std::string numbered_file_name(const SaveTarget& target, int counter, const std::string& extension);

}  // namespace df::nodes

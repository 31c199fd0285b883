// The input files a graph names that must be uploaded to the ComfyUI server before it runs.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/comfy_client.h"

namespace df::runner {

// One graph input that names a file of the input folder.
struct InputFile {
  std::string node_id;
  std::string input;     // the input's name ("image")
  std::string relative;  // the file under the input folder, '/'-separated ("sub/photo.png")
};

// The inputs of `graph` that name a file present in `input_dir` and that the server takes uploads
// for: by `object_info`, an input whose options ask for an upload ("image_upload", "video_upload",
// "audio_upload", "animated_image_upload" or "upload"), as LoadImage's and LoadImageMask's
// "image" do. A value may carry ComfyUI's " [input]" suffix; names that leave the folder are skipped.
std::vector<InputFile> input_files(const nlohmann::json& graph, const nlohmann::json& object_info,
                                   const std::string& input_dir);

// Uploads each file once (POST /upload/image, subfolders kept) and returns `graph` with each
// input naming the file as the server stored it.
nlohmann::json upload_inputs(const nlohmann::json& graph, const std::vector<InputFile>& files,
                             const std::string& input_dir, backends::ComfyClient& client);

}  // namespace df::runner

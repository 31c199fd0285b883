// ComfyUI's model file details: the metadata of a safetensors model (GET /view_metadata) and a
// model's preview image (GET /experiment/models/preview).
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace df::api {

// The "__metadata__" object of the safetensors file `filename` below `folder`. Throws
// Error(kNotFound) when the name does not end in ".safetensors", leaves the folder, names no
// readable safetensors file, or the file carries no metadata.
nlohmann::json safetensors_metadata(const std::filesystem::path& folder,
                                    const std::string& filename);

// The preview of the model `filename` (a file or folder below `folder`) encoded as WebP, picked
// like ComfyUI picks it: the first by name of the image files beside the model called
// "<name without extension>.<ext>" or "<name without extension>.preview.<ext>", else the first
// cover image in the "ssmd_cover_images" metadata of "<name without extension>.safetensors".
// Throws Error(kBadRequest) for an empty name, Error(kForbidden) for a name or preview leaving
// the folder, Error(kNotFound) when there is no preview or it is not a readable image.
std::vector<uint8_t> model_preview_webp(const std::filesystem::path& folder,
                                        const std::string& filename);

}  // namespace df::api

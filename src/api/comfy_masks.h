// POST /upload/mask: the mask editor's result stored as the original image with the mask's alpha.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "api/comfy_folders.h"
#include "api/comfy_upload.h"
#include "http/message.h"
#include "image/image8.h"

namespace df::api {

// The "original_ref" field of a mask upload: which image the mask was painted on.
struct ImageRef {
  std::string filename;  // may carry a " [input]", " [output]" or " [temp]" suffix
  std::string subfolder;
  std::string type = "output";
};

// Error(kBadRequest) unless `text` is a JSON object with a string "filename" (and string
// "subfolder" and "type" when present).
ImageRef parse_image_ref(std::string_view text);

// The file `ref` names: its suffix picks the folder over `type`. Error(kBadRequest) for an empty
// name, one starting with '/' or holding "..", or an unknown type; Error(kForbidden) for a
// subfolder outside the folder; Error(kNotFound) when there is no such file.
std::filesystem::path referenced_file(const ComfyFolders& folders, const ImageRef& ref);

// `original` as RGBA with the alpha of `mask` (opaque where the mask has no alpha channel),
// the mask scaled bilinearly to the original's size when the sizes differ.
Image8 with_mask_alpha(const Image8& original, const Image8& mask);

// Reads ComfyUI's mask upload form: the fields of /upload/image (the "image" file is the mask)
// plus "original_ref". The upload's bytes become the PNG to store: the original's pixels with
// the mask's alpha, keeping the metadata embedded in the original (prompt, workflow, ...).
// Errors as parse_image_upload, parse_image_ref and referenced_file, and Error(kBadRequest)
// when the form has no original_ref or the original is not a readable image.
ImageUpload parse_mask_upload(const ComfyFolders& folders, const http::Request& request);

}  // namespace df::api

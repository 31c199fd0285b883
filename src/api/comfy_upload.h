// Uploads into ComfyUI's input, temp or output folder (POST /upload/image, and where POST
// /upload/mask stores its result) under a name that does not clobber another image.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/comfy_folders.h"
#include "api/multipart.h"
#include "http/message.h"

namespace df::api {

// The fields of an upload form, checked.
struct ImageUpload {
  std::string filename;  // a plain file name, no folders
  std::string bytes;     // a decodable PNG, JPEG or WebP
  std::string type = "input";
  std::string subfolder;  // "" for the folder itself
  bool overwrite = false;
};

// The parts of an upload's multipart/form-data body; Error(kBadRequest) when it is not one.
std::vector<MultipartPart> upload_form(const http::Request& request);

// Reads the fields of ComfyUI's upload form: "image" (a file), "overwrite" ("true" or "1"),
// "type" (input, temp, output) and "subfolder". Throws Error(kBadRequest) for a missing file or
// file name, a name with a folder in it, an unknown type, or bytes that are not a PNG, JPEG or
// WebP image this server can read.
ImageUpload parse_image_upload(const std::vector<MultipartPart>& form);

// Stores the upload and answers {"name", "subfolder", "type"}. Without `overwrite`, an existing
// file with the same bytes is kept and named; another one makes the name "<stem> (1)<ext>",
// "(2)", ... until it is free. Throws Error(kBadRequest) for a subfolder outside the folder,
// Error(kIo) when the file cannot be written. Callers serialise saves into the same folders.
nlohmann::json save_image_upload(const ComfyFolders& folders, const ImageUpload& upload);

}  // namespace df::api

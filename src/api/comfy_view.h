// GET /view: a file of ComfyUI's input, output or temp folder, as stored or re-encoded (preview,
// colour or alpha channel only).
#pragma once

#include <map>
#include <string>

#include "api/comfy_folders.h"
#include "http/message.h"

namespace df::api {

// Answers ComfyUI's /view query (filename, type, subfolder, preview, channel):
//  * "name [output|input|temp]" picks the folder over `type` (default "output");
//  * Error(kBadRequest) for an empty name, one starting with '/' or holding "..", or an unknown
//    type; Error(kForbidden) for a subfolder outside the folder; Error(kNotFound) when the file
//    (the name's last component only) is not there or `filename` is missing;
//  * preview="webp;90" or "jpeg;90": the image re-encoded (WebP whenever the channel holds 'a');
//    channel=rgb: PNG without alpha; channel=a: PNG of the alpha with black colour; otherwise the
//    file as stored. Always with Content-Disposition: filename="<name>".
http::Response view_file(const ComfyFolders& folders,
                         const std::map<std::string, std::string>& query);

}  // namespace df::api

// Uploads into ComfyUI's input, temp or output folder under a name that does not clobber
// another image.
#include "api/comfy_upload.h"

#include <filesystem>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "image/image.h"

namespace df::api {
namespace {

namespace fs = std::filesystem;

std::string field(const std::vector<MultipartPart>& parts, std::string_view name,
                  const std::string& fallback = "") {
  const MultipartPart* part = find_part(parts, name);
  return part == nullptr ? fallback : part->body;
}

void check_image_bytes(const std::string& bytes) {
  try {
    decode_image(std::vector<uint8_t>(bytes.begin(), bytes.end()));
  } catch (const Error& error) {
    throw Error(ErrorCode::kBadRequest,
                std::string("only PNG, JPEG and WebP images can be uploaded: ") + error.what());
  }
}

bool same_bytes(const fs::path& file, const std::string& bytes) {
  std::error_code error;
  if (!fs::is_regular_file(file, error) || fs::file_size(file, error) != bytes.size()) return false;
  const std::vector<uint8_t> existing = read_file_bytes(file.string());
  return std::string_view(reinterpret_cast<const char*>(existing.data()), existing.size()) == bytes;
}

}  // namespace

std::vector<MultipartPart> upload_form(const http::Request& request) {
  return parse_multipart(request.body, multipart_boundary(request.header("Content-Type")));
}

ImageUpload parse_image_upload(const std::vector<MultipartPart>& form) {
  const MultipartPart* image = find_part(form, "image");
  if (image == nullptr || !image->filename) {
    throw Error(ErrorCode::kBadRequest, "the form has no file in its 'image' field");
  }
  ImageUpload upload;
  upload.filename = *image->filename;
  if (upload.filename.empty()) throw Error(ErrorCode::kBadRequest, "the uploaded file has no name");
  check_file_name_text(upload.filename, "the uploaded file's name");
  if (upload.filename.find_first_of(std::string("/\\\0", 3)) != std::string::npos ||
      upload.filename == "." || upload.filename == "..") {
    throw Error(ErrorCode::kBadRequest,
                "the file name '" + upload.filename + "' must be a plain name without folders");
  }
  upload.type = field(form, "type", "input");
  if (!is_comfy_folder_type(upload.type)) {
    throw Error(ErrorCode::kBadRequest,
                "unknown upload type '" + upload.type + "': use input, temp or output");
  }
  upload.subfolder = field(form, "subfolder");
  if (!upload.subfolder.empty()) check_file_name_text(upload.subfolder, "subfolder");
  const std::string overwrite = field(form, "overwrite");
  upload.overwrite = overwrite == "true" || overwrite == "1";
  upload.bytes = image->body;
  check_image_bytes(upload.bytes);
  return upload;
}

nlohmann::json save_image_upload(const ComfyFolders& folders, const ImageUpload& upload) {
  const fs::path& root = *folders.by_type(upload.type);
  fs::path folder;
  try {
    folder = join_inside(root.string(), upload.subfolder, "subfolder");
  } catch (const Error&) {
    throw Error(ErrorCode::kBadRequest,
                "subfolder '" + upload.subfolder + "' is outside the " + upload.type + " folder");
  }
  std::error_code error;
  fs::create_directories(folder, error);
  if (error) {
    throw Error(ErrorCode::kBadRequest,
                "cannot create subfolder '" + upload.subfolder + "': " + error.message());
  }
  std::string name = upload.filename;
  const fs::path requested(upload.filename);
  bool duplicate = false;
  std::error_code exists_error;
  for (int copy = 1; !upload.overwrite && fs::exists(folder / name, exists_error); ++copy) {
    if (same_bytes(folder / name, upload.bytes)) {
      duplicate = true;
      break;
    }
    name = requested.stem().string() + " (" + std::to_string(copy) + ")" +
           requested.extension().string();
    check_file_name_text(name, "the name for another copy of '" + upload.filename + "'");
  }
  if (!duplicate) {
    write_file_atomically((folder / name).string(),
                          std::vector<uint8_t>(upload.bytes.begin(), upload.bytes.end()));
  }
  return {{"name", name}, {"subfolder", upload.subfolder}, {"type", upload.type}};
}

}  // namespace df::api

// ComfyUI's model file details: safetensors metadata and model preview images.
#include "api/comfy_model_files.h"

#include <algorithm>
#include <map>
#include <optional>

#include "api/comfy_file_headers.h"
#include "core/base64.h"
#include "core/error.h"
#include "core/files.h"
#include "engine/tensor_file.h"
#include "image/image.h"

namespace df::api {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kCoverImagesKey = "ssmd_cover_images";
constexpr int kPreviewQuality = 80;  // what ComfyUI's WebP encoder uses by default

// `relative` below `folder`, or nullopt when it leaves it (also through a symlink).
std::optional<fs::path> path_inside(const fs::path& folder, const std::string& relative) {
  try {
    return fs::path(join_inside(folder.string(), relative, "model file"));
  } catch (const Error&) {
    return std::nullopt;
  }
}

// The metadata of a weights file, or nullopt when it is not one.
std::optional<std::map<std::string, std::string>> read_metadata(const fs::path& file) {
  try {
    return engine::TensorFile::open(file.string()).metadata();
  } catch (const Error&) {
    return std::nullopt;
  }
}

// The image files beside the model that ComfyUI takes as its previews, sorted by name.
std::vector<fs::path> preview_files(const fs::path& model_base) {
  const std::string stem = model_base.filename().string();
  std::vector<fs::path> files;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(model_base.parent_path(), error)) {
    const std::string name = entry.path().filename().string();
    const std::string name_base = fs::path(name).replace_extension().string();
    if (!name.starts_with(stem + ".") || (name_base != stem && name_base != stem + ".preview")) {
      continue;
    }
    if (served_content_type(name).starts_with("image/") && entry.is_regular_file(error)) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The first cover image embedded in the sibling safetensors file's metadata, if any.
std::optional<std::vector<uint8_t>> cover_image(const fs::path& model_base) {
  const auto metadata = read_metadata(fs::path(model_base).concat(".safetensors"));
  if (!metadata) return std::nullopt;
  const auto covers = metadata->find(kCoverImagesKey);
  if (covers == metadata->end()) return std::nullopt;
  const json images = json::parse(covers->second, nullptr, /*allow_exceptions=*/false);
  if (!images.is_array() || images.empty() || !images[0].is_string()) return std::nullopt;
  return decode_base64(images[0].get<std::string>());
}

std::vector<uint8_t> as_webp(const std::vector<uint8_t>& image_bytes, const std::string& model) {
  try {
    return encode_image(decode_image(image_bytes), ImageFormat::kWebp, {}, kPreviewQuality);
  } catch (const Error& error) {
    throw Error(ErrorCode::kNotFound,
                "the preview of '" + model + "' is not a readable image: " + error.what());
  }
}

}  // namespace

json safetensors_metadata(const fs::path& folder, const std::string& filename) {
  if (!filename.ends_with(".safetensors")) {
    throw Error(ErrorCode::kNotFound, "'" + filename + "' is not a .safetensors file");
  }
  const std::optional<fs::path> file = path_inside(folder, filename);
  if (!file || !fs::is_regular_file(*file)) {
    throw Error(ErrorCode::kNotFound, "no model file '" + filename + "'");
  }
  const auto metadata = read_metadata(*file);
  if (!metadata) throw Error(ErrorCode::kNotFound, "'" + filename + "' is not a safetensors file");
  if (metadata->empty()) throw Error(ErrorCode::kNotFound, "'" + filename + "' has no metadata");
  return *metadata;
}

std::vector<uint8_t> model_preview_webp(const fs::path& folder, const std::string& filename) {
  if (filename.empty()) throw Error(ErrorCode::kBadRequest, "no model file name given");
  const std::optional<fs::path> model = path_inside(folder, filename);
  if (!model) throw Error(ErrorCode::kForbidden, "'" + filename + "' is outside the model folder");
  const fs::path base = fs::path(*model).replace_extension();
  const std::vector<fs::path> files = preview_files(base);
  if (!files.empty()) {
    const fs::path relative = fs::relative(files.front(), fs::weakly_canonical(folder));
    if (!path_inside(folder, relative.string())) {
      throw Error(ErrorCode::kForbidden, "the preview of '" + filename + "' leaves the folder");
    }
    return as_webp(read_file_bytes(files.front().string()), filename);
  }
  const std::optional<std::vector<uint8_t>> cover = cover_image(base);
  if (!cover) throw Error(ErrorCode::kNotFound, "'" + filename + "' has no preview image");
  return as_webp(*cover, filename);
}

}  // namespace df::api

// POST /upload/mask: the original image with the mask's alpha.
#include "api/comfy_masks.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "http/json_text.h"
#include "image/image.h"

namespace df::api {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string string_member(const json& object, const char* name, const std::string& fallback) {
  const auto found = object.find(name);
  if (found == object.end()) return fallback;
  if (!found->is_string()) {
    throw Error(ErrorCode::kBadRequest, std::string("original_ref.") + name + " must be a string");
  }
  return found->get<std::string>();
}

// The alpha plane of `image`: its fourth channel, or fully opaque when it has none.
std::vector<uint8_t> alpha_plane(const Image8& image) {
  const size_t pixels = static_cast<size_t>(image.width) * image.height;
  std::vector<uint8_t> alpha(pixels, 255);
  if (image.channels != 4) return alpha;
  for (size_t i = 0; i < pixels; ++i) alpha[i] = image.pixels[i * 4 + 3];
  return alpha;
}

// `plane` (width x height) scaled bilinearly to `to_width` x `to_height`, pixel centres aligned.
std::vector<uint8_t> scaled_plane(const std::vector<uint8_t>& plane, int width, int height,
                                  int to_width, int to_height) {
  std::vector<uint8_t> scaled(static_cast<size_t>(to_width) * to_height);
  auto source = [&](double position, int size, int& low, int& high, double& weight) {
    const double clamped = std::clamp(position, 0.0, static_cast<double>(size - 1));
    low = static_cast<int>(clamped);
    high = std::min(low + 1, size - 1);
    weight = clamped - low;
  };
  for (int y = 0; y < to_height; ++y) {
    int y0, y1;
    double wy;
    source((y + 0.5) * height / to_height - 0.5, height, y0, y1, wy);
    for (int x = 0; x < to_width; ++x) {
      int x0, x1;
      double wx;
      source((x + 0.5) * width / to_width - 0.5, width, x0, x1, wx);
      auto at = [&](int px, int py) { return plane[static_cast<size_t>(py) * width + px]; };
      const double top = at(x0, y0) * (1 - wx) + at(x1, y0) * wx;
      const double bottom = at(x0, y1) * (1 - wx) + at(x1, y1) * wx;
      scaled[static_cast<size_t>(y) * to_width + x] =
          static_cast<uint8_t>(std::lround(top * (1 - wy) + bottom * wy));
    }
  }
  return scaled;
}

}  // namespace

ImageRef parse_image_ref(std::string_view text) {
  const json value = http::parse_json_text_or_discarded(text);
  if (!value.is_object()) {
    throw Error(ErrorCode::kBadRequest, "original_ref must be a JSON object");
  }
  if (!value.contains("filename")) {
    throw Error(ErrorCode::kBadRequest, "original_ref has no filename");
  }
  ImageRef ref;
  ref.filename = string_member(value, "filename", "");
  ref.subfolder = string_member(value, "subfolder", "");
  ref.type = string_member(value, "type", "output");
  return ref;
}

fs::path referenced_file(const ComfyFolders& folders, const ImageRef& ref) {
  return existing_comfy_file(folders, ref.filename, ref.type, ref.subfolder,
                             /*basename_only=*/false);
}

Image8 with_mask_alpha(const Image8& original, const Image8& mask) {
  std::vector<uint8_t> alpha = alpha_plane(mask);
  if (mask.width != original.width || mask.height != original.height) {
    alpha = scaled_plane(alpha, mask.width, mask.height, original.width, original.height);
  }
  Image8 result{original.width, original.height, 4, {}};
  const size_t pixels = static_cast<size_t>(original.width) * original.height;
  result.pixels.resize(pixels * 4);
  for (size_t i = 0; i < pixels; ++i) {
    std::copy_n(&original.pixels[i * original.channels], 3, &result.pixels[i * 4]);
    result.pixels[i * 4 + 3] = alpha[i];
  }
  return result;
}

ImageUpload parse_mask_upload(const ComfyFolders& folders, const http::Request& request) {
  const std::vector<MultipartPart> form = upload_form(request);
  ImageUpload upload = parse_image_upload(form);
  const MultipartPart* ref_field = find_part(form, "original_ref");
  if (ref_field == nullptr) {
    throw Error(ErrorCode::kBadRequest, "the form has no 'original_ref' field");
  }
  const fs::path original_file = referenced_file(folders, parse_image_ref(ref_field->body));
  const std::vector<uint8_t> original_bytes = read_file_bytes(original_file.string());
  std::vector<uint8_t> png;
  try {
    const std::vector<uint8_t> mask_bytes(upload.bytes.begin(), upload.bytes.end());
    png = encode_image(with_mask_alpha(decode_image(original_bytes), decode_image(mask_bytes)),
                       ImageFormat::kPng, read_embedded_metadata(original_bytes));
  } catch (const Error& error) {
    throw Error(ErrorCode::kBadRequest,
                "the original image '" + original_file.filename().string() +
                    "' cannot be combined with the mask: " + error.what());
  }
  upload.bytes.assign(png.begin(), png.end());
  return upload;
}

}  // namespace df::api

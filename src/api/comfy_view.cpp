// GET /view: a file of ComfyUI's input, output or temp folder, as stored or re-encoded.
#include "api/comfy_view.h"

#include <algorithm>
#include <cctype>

#include "api/comfy_file_headers.h"
#include "core/error.h"
#include "core/files.h"
#include "image/image.h"

namespace df::api {
namespace {

namespace fs = std::filesystem;

std::string query_value(const std::map<std::string, std::string>& query, const std::string& name,
                        const std::string& fallback = "") {
  const auto found = query.find(name);
  return found == query.end() ? fallback : found->second;
}

// The file the query names, after ComfyUI's checks (see view_file).
fs::path requested_file(const ComfyFolders& folders,
                        const std::map<std::string, std::string>& query) {
  const auto filename = query.find("filename");
  if (filename == query.end()) throw Error(ErrorCode::kNotFound, "no filename given");
  return existing_comfy_file(folders, filename->second, query_value(query, "type", "output"),
                             query_value(query, "subfolder"), /*basename_only=*/true);
}

Image8 without_alpha(const Image8& image) {
  if (image.channels == 3) return image;
  Image8 rgb{image.width, image.height, 3, {}};
  rgb.pixels.reserve(static_cast<size_t>(image.width) * image.height * 3);
  for (size_t i = 0; i < image.pixels.size(); i += 4) {
    rgb.pixels.insert(rgb.pixels.end(), image.pixels.begin() + i, image.pixels.begin() + i + 3);
  }
  return rgb;
}

// RGBA with black colour and the alpha of `image` (opaque when it has none).
Image8 alpha_only(const Image8& image) {
  Image8 alpha{image.width, image.height, 4, {}};
  const size_t pixels = static_cast<size_t>(image.width) * image.height;
  alpha.pixels.assign(pixels * 4, 0);
  for (size_t i = 0; i < pixels; ++i) {
    alpha.pixels[i * 4 + 3] = image.channels == 4 ? image.pixels[i * 4 + 3] : 255;
  }
  return alpha;
}

// "webp;90" -> WebP at quality 90; JPEG only when asked for and the channel ("" when the query
// has none) wants no alpha.
http::Response preview_response(const fs::path& file, const std::string& preview,
                                const std::string& channel) {
  const std::string name = preview.substr(0, preview.find(';'));
  const bool jpeg = name == "jpeg" && channel.find('a') == std::string::npos;
  const std::string last = preview.substr(preview.rfind(';') + 1);
  int quality = 90;
  if (!last.empty() &&
      std::all_of(last.begin(), last.end(), [](unsigned char c) { return std::isdigit(c); })) {
    quality = last.size() > 3 ? 100 : std::clamp(std::stoi(last), 1, 100);
  }
  Image8 image = read_image_file(file.string());
  if (jpeg || channel == "rgb") image = without_alpha(image);
  const ImageFormat format = jpeg ? ImageFormat::kJpeg : ImageFormat::kWebp;
  const std::vector<uint8_t> bytes = encode_image(image, format, {}, quality);
  const std::string format_name = jpeg ? "jpeg" : "webp";
  std::string shown_name = file.filename().string();
  for (size_t at = shown_name.find("png"); at != std::string::npos;
       at = shown_name.find("png", at + format_name.size())) {
    shown_name.replace(at, 3, format_name);
  }
  http::Response response =
      http::Response::text(200, std::string(bytes.begin(), bytes.end()), content_type(format));
  response.headers.emplace_back("Content-Disposition", content_disposition("", shown_name));
  return response;
}

http::Response png_response(const Image8& image, const std::string& name) {
  const std::vector<uint8_t> bytes = encode_image(image, ImageFormat::kPng, {});
  http::Response response = http::Response::text(200, std::string(bytes.begin(), bytes.end()),
                                                 content_type(ImageFormat::kPng));
  response.headers.emplace_back("Content-Disposition", content_disposition("", name));
  return response;
}

}  // namespace

http::Response view_file(const ComfyFolders& folders,
                         const std::map<std::string, std::string>& query) {
  const fs::path file = requested_file(folders, query);
  if (const auto preview = query.find("preview"); preview != query.end()) {
    return preview_response(file, preview->second, query_value(query, "channel"));
  }
  const std::string channel = query_value(query, "channel", "rgba");
  const std::string name = file.filename().string();
  if (channel == "rgb") return png_response(without_alpha(read_image_file(file.string())), name);
  if (channel == "a") return png_response(alpha_only(read_image_file(file.string())), name);
  const std::vector<uint8_t> bytes = read_file_bytes(file.string());
  http::Response response =
      http::Response::text(200, std::string(bytes.begin(), bytes.end()), served_content_type(name));
  response.headers.emplace_back("Content-Disposition", content_disposition("", name));
  return response;
}

}  // namespace df::api

// Image nodes: load, scale, save and preview images, and ComfyUI's pixel operations on images.
#include <filesystem>
#include <random>
#include <regex>

#include "core/error.h"
#include "core/files.h"
#include "core/sha256.h"
#include "nodes/builtin_nodes.h"
#include "nodes/function_node.h"
#include "nodes/generation_trace.h"
#include "nodes/image_ops.h"
#include "nodes/image_tensors.h"
#include "nodes/node_values.h"
#include "nodes/save_paths.h"

namespace df::nodes {
namespace {

namespace fs = std::filesystem;
using graph::NodeContext;
using graph::NodeInputs;
using graph::Value;

// LoadImage values may carry ComfyUI's folder annotation: "cat.png [input]" / "x.png [output]".
std::string image_path(const RunEnvironment& env, std::string name) {
  std::string root = env.input_dir;
  static const std::regex annotated(R"(^(.*) \[(input|output|temp)\]$)");
  std::smatch match;
  if (std::regex_match(name, match, annotated)) {
    const std::string folder = match[2];
    name = match[1];
    if (folder == "output") root = env.output_dir;
    if (folder == "temp") root = env.temp_dir;
  }
  return join_inside(root, name, "image");
}

bool is_image_file(const fs::path& path) {
  static const std::vector<std::string> extensions = {".png", ".jpg", ".jpeg", ".webp"};
  std::string ext = path.extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return std::find(extensions.begin(), extensions.end(), ext) != extensions.end();
}

EmbeddedMetadata metadata_for(const NodeContext& ctx, const CheckpointStore& store, int width,
                              int height) {
  GenerationParameters params = trace_generation(ctx.prompt(), ctx.node_id());
  params.width = width;
  params.height = height;
  params.model_hash = store.hash_of(params.model_name);
  EmbeddedMetadata metadata;
  metadata.text.emplace_back("parameters", format_a1111_parameters(params));
  metadata.text.emplace_back("prompt", ctx.prompt().dump(-1, ' ', true));
  if (ctx.extra_pnginfo().is_object()) {
    for (const auto& [key, value] : ctx.extra_pnginfo().items()) {
      metadata.text.emplace_back(key, value.dump(-1, ' ', true));
    }
  }
  return metadata;
}

std::string random_letters(size_t count) {
  static thread_local std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> letter(0, 25);
  std::string out;
  for (size_t i = 0; i < count; ++i) out += static_cast<char>('a' + letter(rng));
  return out;
}

// Writes every image of the batch; fills the node's UI result and reports artifacts.
void save_images(const NodeInputs& in, NodeContext& ctx, const CheckpointStore& store,
                 const RunEnvironment& env, const std::string& kind, const std::string& prefix) {
  const at::Tensor& pixels = in.get<ImageValue>("images").pixels;
  const int height = static_cast<int>(pixels.size(1)), width = static_cast<int>(pixels.size(2));
  const std::string root = kind == "temp" ? env.temp_dir : env.output_dir;
  fs::create_directories(root);
  SaveTarget target = save_target(root, prefix, width, height);
  EmbeddedMetadata metadata = metadata_for(ctx, store, width, height);
  const GenerationParameters traced = trace_generation(ctx.prompt(), ctx.node_id());
  nlohmann::json images = nlohmann::json::array();
  for (int64_t i = 0; i < pixels.size(0); ++i) {
    ctx.throw_if_canceled();
    const std::string filename = numbered_file_name(target, target.counter++, file_extension(env.format));
    const fs::path path = target.folder / filename;
    const std::vector<uint8_t> bytes = encode_image(to_image8(pixels, i), env.format, metadata, env.quality);
    write_file_atomically(path.string(), bytes);
    images.push_back({{"filename", filename}, {"subfolder", target.subfolder}, {"type", kind}});
    if (env.on_artifact) {
      env.on_artifact({ctx.node_id(), path.string(), filename, target.subfolder, kind, env.format,
                       width, height, traced.seed, bytes.size(), sha256_hex(bytes.data(), bytes.size())});
    }
  }
  ctx.ui_output() = {{"images", images}};
}

std::vector<Value> image_output(at::Tensor pixels) {
  return {Value::of("IMAGE", ImageValue{std::move(pixels)})};
}

std::vector<Value> mask_output(at::Tensor mask) {
  return {Value::of("MASK", MaskValue{std::move(mask)})};
}

const at::Tensor& image_input(const NodeInputs& in, const char* name = "image") {
  return in.get<ImageValue>(name).pixels;
}

at::Tensor scale_to(const at::Tensor& pixels, const std::string& method, PixelSize size) {
  return scale_images(pixels, method, size.width, size.height, "disabled");
}

// The nodes that only transform tensors: ComfyUI's nodes.py image operations and the image
// nodes of comfy_extras (post-processing, Canny, crop, masked composite).
void register_pixel_operations(graph::NodeImplRegistry& registry) {
  add_function_node(registry, "ImageScaleBy", [](const NodeInputs& in, NodeContext&) {
    const at::Tensor& pixels = image_input(in);
    return image_output(scale_to(pixels, in.get_string("upscale_method"),
                                 scaled_size(pixels, in.get_float("scale_by"))));
  });
  add_function_node(registry, "ImageScaleToTotalPixels", [](const NodeInputs& in, NodeContext&) {
    const at::Tensor& pixels = image_input(in);
    return image_output(scale_to(pixels, in.get_string("upscale_method"),
                                 total_pixels_size(pixels, in.get_float("megapixels"))));
  });
  add_function_node(registry, "ImageInvert", [](const NodeInputs& in, NodeContext&) {
    return image_output(invert_image(image_input(in)));
  });
  add_function_node(registry, "ImageBatch", [](const NodeInputs& in, NodeContext&) {
    return image_output(batch_images(image_input(in, "image1"), image_input(in, "image2")));
  });
  add_function_node(registry, "EmptyImage", [](const NodeInputs& in, NodeContext&) {
    return image_output(empty_image(in.get_int("width"), in.get_int("height"),
                                    in.get_int("batch_size"), in.get_int("color")));
  });
  add_function_node(registry, "ImagePadForOutpaint", [](const NodeInputs& in, NodeContext&) {
    PaddedImage padded = pad_for_outpaint(image_input(in), in.get_int("left"), in.get_int("top"),
                                          in.get_int("right"), in.get_int("bottom"),
                                          in.get_int("feathering"));
    return std::vector<Value>{Value::of("IMAGE", ImageValue{padded.pixels}),
                              Value::of("MASK", MaskValue{padded.mask})};
  });
  add_function_node(registry, "ImageCompositeMasked", [](const NodeInputs& in, NodeContext&) {
    const at::Tensor mask = in.has("mask") ? in.get<MaskValue>("mask").mask : at::Tensor();
    return image_output(composite_images(image_input(in, "destination"), image_input(in, "source"),
                                         in.get_int("x"), in.get_int("y"),
                                         in.get_bool("resize_source"), mask));
  });
  add_function_node(registry, "ImageBlend", [](const NodeInputs& in, NodeContext&) {
    return image_output(blend_images(image_input(in, "image1"), image_input(in, "image2"),
                                     in.get_float("blend_factor"), in.get_string("blend_mode")));
  });
  add_function_node(registry, "ImageBlur", [](const NodeInputs& in, NodeContext&) {
    return image_output(blur_image(image_input(in), in.get_int("blur_radius"), in.get_float("sigma")));
  });
  add_function_node(registry, "ImageSharpen", [](const NodeInputs& in, NodeContext&) {
    return image_output(sharpen_image(image_input(in), in.get_int("sharpen_radius"),
                                      in.get_float("sigma"), in.get_float("alpha")));
  });
  add_function_node(registry, "Canny", [](const NodeInputs& in, NodeContext&) {
    return image_output(canny_edges(image_input(in), in.get_float("low_threshold"),
                                    in.get_float("high_threshold")));
  });
  add_function_node(registry, "ImageCrop", [](const NodeInputs& in, NodeContext&) {
    return image_output(crop_image(image_input(in), in.get_int("width"), in.get_int("height"),
                                   in.get_int("x"), in.get_int("y")));
  });
}

}  // namespace

std::vector<std::string> list_input_images(const std::string& input_dir) {
  std::vector<std::string> names;
  if (!fs::is_directory(input_dir)) return names;
  for (auto it = fs::recursive_directory_iterator(input_dir, fs::directory_options::skip_permission_denied);
       it != fs::recursive_directory_iterator(); ++it) {
    if (it->is_regular_file() && is_image_file(it->path())) {
      names.push_back(fs::relative(it->path(), input_dir).generic_string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

graph::ValidationHooks builtin_validation_hooks(const RunEnvironment& env) {
  graph::ValidationHooks hooks;
  const auto image_exists = [&env](std::string_view name) {
    try {
      return fs::is_regular_file(image_path(env, std::string(name)));
    } catch (const Error&) {
      return false;
    }
  };
  hooks.by_class_type.emplace("LoadImage", graph::load_image_validator(image_exists));
  hooks.by_class_type.emplace("LoadImageMask", graph::load_image_validator(image_exists));
  hooks.by_class_type.emplace("SaveImage", graph::filename_prefix_validator());
  hooks.by_class_type.emplace("SaveAnimatedWEBP", graph::filename_prefix_validator());
  return hooks;
}

void register_image_nodes(graph::NodeImplRegistry& registry, NodeResources resources) {
  const RunEnvironment& env = resources.env;
  const CheckpointStore& store = resources.models;
  const auto image_file_hash = [&env](const NodeInputs& in) -> std::optional<std::string> {
    return sha256_file(image_path(env, in.get_string("image")));
  };
  add_function_node(
      registry, "LoadImage",
      [&env](const NodeInputs& in, NodeContext& ctx) {
        report_stage(env, ctx, "load_image");
        DecodedImage image = from_image8(read_image_file(image_path(env, in.get_string("image"))));
        return std::vector<Value>{Value::of("IMAGE", ImageValue{image.pixels}),
                                  Value::of("MASK", MaskValue{image.mask})};
      },
      image_file_hash);

  add_function_node(
      registry, "LoadImageMask",
      [&env](const NodeInputs& in, NodeContext& ctx) {
        report_stage(env, ctx, "load_image");
        const Image8 image = read_image_file(image_path(env, in.get_string("image")));
        return mask_output(image8_channel_mask(image, in.get_string("channel")));
      },
      image_file_hash);

  add_function_node(registry, "ImageScale", [](const NodeInputs& in, NodeContext&) {
    at::Tensor scaled = scale_images(in.get<ImageValue>("image").pixels, in.get_string("upscale_method"),
                                     in.get_int("width"), in.get_int("height"), in.get_string("crop"));
    return std::vector<Value>{Value::of("IMAGE", ImageValue{scaled})};
  });

  add_function_node(registry, "SaveImage", [&store, &env](const NodeInputs& in, NodeContext& ctx) {
    report_stage(env, ctx, "save");
    save_images(in, ctx, store, env, "output", in.get_string("filename_prefix"));
    return std::vector<Value>{};
  });

  add_function_node(registry, "PreviewImage", [&store, &env](const NodeInputs& in, NodeContext& ctx) {
    report_stage(env, ctx, "save");
    save_images(in, ctx, store, env, "temp", "ComfyUI_temp_" + random_letters(5));
    return std::vector<Value>{};
  });

  register_pixel_operations(registry);
}

}  // namespace df::nodes

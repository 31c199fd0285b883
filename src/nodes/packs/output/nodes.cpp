// Output nodes beyond single images: SaveAnimatedWEBP writes an image batch as one animated WebP;
// SaveImageWebsocket streams each image of a batch to the client as a PNG.
#include <map>

#include "core/error.h"
#include "core/files.h"
#include "core/sha256.h"
#include "image/png_codec.h"
#include "image/webp_animation.h"
#include "nodes/builtin_nodes.h"
#include "nodes/function_node.h"
#include "nodes/generation_trace.h"
#include "nodes/image_tensors.h"
#include "nodes/node_values.h"
#include "nodes/save_paths.h"

namespace df::nodes {
namespace {

using graph::NodeContext;
using graph::NodeInputs;
using graph::Value;

// SaveAnimatedWEBP's compression methods: libwebp's speed/size trade-off 0..6.
int compression_method(const std::string& name) {
  static const std::map<std::string, int> methods = {{"default", 4}, {"fastest", 0}, {"slowest", 6}};
  const auto it = methods.find(name);
  if (it == methods.end()) {
    throw Error(ErrorCode::kInvalidArgument,
                "unknown method '" + name + "' (expected default, fastest or slowest)");
  }
  return it->second;
}

// ComfyUI's WebP metadata: the prompt and every EXTRA_PNGINFO entry (the workflow), no A1111 text.
EmbeddedMetadata webp_metadata(const NodeContext& ctx) {
  EmbeddedMetadata metadata;
  if (!ctx.prompt().is_null()) metadata.text.emplace_back("prompt", ctx.prompt().dump(-1, ' ', true));
  if (ctx.extra_pnginfo().is_object()) {
    for (const auto& [key, value] : ctx.extra_pnginfo().items()) {
      metadata.text.emplace_back(key, value.dump(-1, ' ', true));
    }
  }
  return metadata;
}

std::vector<Image8> frames_of(const at::Tensor& pixels, const NodeContext& ctx) {
  if (pixels.dim() != 4 || pixels.size(0) == 0) {
    throw Error(ErrorCode::kInvalidArgument, "SaveAnimatedWEBP: images must be a non-empty batch");
  }
  std::vector<Image8> frames;
  for (int64_t i = 0; i < pixels.size(0); ++i) {
    ctx.throw_if_canceled();
    frames.push_back(to_image8(pixels, i));
  }
  return frames;
}

WebpAnimationOptions animation_options(const NodeInputs& in) {
  WebpAnimationOptions options;
  options.fps = in.get_float("fps");
  options.lossless = in.get_bool("lossless");
  options.quality = static_cast<int>(in.get_int("quality"));
  options.method = compression_method(in.get_string("method"));
  return options;
}

// Writes the animation; fills the UI result {"images": [...], "animated": [more than one frame]}
// and reports the file as an artifact.
void save_animation(const NodeInputs& in, NodeContext& ctx, const RunEnvironment& env) {
  const at::Tensor& pixels = in.get<ImageValue>("images").pixels;
  const WebpAnimationOptions options = animation_options(in);
  const std::vector<Image8> frames = frames_of(pixels, ctx);
  const int width = frames[0].width, height = frames[0].height;
  const SaveTarget target = save_target(env.output_dir, in.get_string("filename_prefix"), width, height);
  const std::string filename = numbered_file_name(target, target.counter, "webp");
  const std::vector<uint8_t> bytes = encode_animated_webp(frames, options, webp_metadata(ctx));
  const std::string path = (target.folder / filename).string();
  write_file_atomically(path, bytes);
  const nlohmann::json saved = {
      {"filename", filename}, {"subfolder", target.subfolder}, {"type", "output"}};
  ctx.ui_output() = {{"images", nlohmann::json::array({saved})},
                     {"animated", nlohmann::json::array({frames.size() > 1})}};
  if (env.on_artifact) {
    const uint64_t seed = trace_generation(ctx.prompt(), ctx.node_id()).seed;
    env.on_artifact({ctx.node_id(), path, filename, target.subfolder, "output", ImageFormat::kWebp,
                     width, height, seed, bytes.size(), sha256_hex(bytes.data(), bytes.size())});
  }
}

// SaveImageWebsocket: each image of the batch as a PNG (ComfyUI's fast compression, no metadata)
// for the client; nothing is written and the node has no UI result.
void stream_images(const NodeInputs& in, const NodeContext& ctx, const RunEnvironment& env) {
  const at::Tensor& pixels = in.get<ImageValue>("images").pixels;
  if (pixels.dim() != 4) {
    throw Error(ErrorCode::kInvalidArgument, "SaveImageWebsocket: images must be a batch [B,H,W,C]");
  }
  if (!env.on_streamed_image) return;
  const int count = static_cast<int>(pixels.size(0));
  for (int index = 0; index < count; ++index) {
    ctx.throw_if_canceled();
    const Image8 image = to_image8(pixels, index);
    env.on_streamed_image({ctx.node_id(), encode_png(image, {}, kPngStreamCompressionLevel),
                           image.width, image.height, index, count});
  }
}

}  // namespace

void register_output_nodes(graph::NodeImplRegistry& registry, NodeResources resources) {
  const RunEnvironment& env = resources.env;
  add_function_node(registry, "SaveAnimatedWEBP", [&env](const NodeInputs& in, NodeContext& ctx) {
    report_stage(env, ctx, "save");
    save_animation(in, ctx, env);
    return std::vector<Value>{in.linked("images")};
  });
  add_function_node(registry, "SaveImageWebsocket", [&env](const NodeInputs& in, NodeContext& ctx) {
    report_stage(env, ctx, "save");
    stream_images(in, ctx, env);
    return std::vector<Value>{};
  });
}

}  // namespace df::nodes

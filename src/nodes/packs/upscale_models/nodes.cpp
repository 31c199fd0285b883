// Upscale model nodes: UpscaleModelLoader reads ESRGAN-style networks (the last one stays loaded)
// and ImageUpscaleWithModel runs them over images in feathered tiles.
#include <memory>
#include <mutex>

#include "engine/checkpoint_bundle.h"
#include "engine/upscale/tiled_upscale.h"
#include "engine/upscale/upscale_model.h"
#include "nodes/builtin_nodes.h"
#include "nodes/function_node.h"
#include "nodes/node_values.h"

namespace df::nodes {
namespace {

using graph::NodeContext;
using graph::NodeInputs;
using graph::Value;

struct UpscaleModelValue {  // UPSCALE_MODEL
  std::shared_ptr<const engine::upscale::UpscaleModel> model;
};

// Keeps the most recently loaded upscale model, on the runner's device in float32.
class UpscaleModelCache {
 public:
  explicit UpscaleModelCache(CheckpointStore& models) : models_(models) {}

  std::shared_ptr<const engine::upscale::UpscaleModel> get(const std::string& name) {
    const std::string path = models_.model_file("upscale_models", name);
    std::lock_guard lock(mutex_);
    if (path != loaded_path_ || !loaded_) {
      loaded_.reset();
      const std::string& device_name = models_.options().device;
      const at::Device device =
          engine::resolve_placement(device_name, "float32", engine::Family::kSD1).device;
      loaded_ = std::make_shared<const engine::upscale::UpscaleModel>(
          engine::upscale::load_upscale_model(path, device));
      loaded_path_ = path;
    }
    return loaded_;
  }

 private:
  CheckpointStore& models_;
  std::mutex mutex_;
  std::string loaded_path_;
  std::shared_ptr<const engine::upscale::UpscaleModel> loaded_;
};

}  // namespace

void register_upscale_models_nodes(graph::NodeImplRegistry& registry, NodeResources resources) {
  auto cache = std::make_shared<UpscaleModelCache>(resources.models);
  add_function_node(registry, "UpscaleModelLoader", [cache](const NodeInputs& in, NodeContext&) {
    return std::vector<Value>{
        Value::of("UPSCALE_MODEL", UpscaleModelValue{cache->get(in.get_string("model_name"))})};
  });
  add_function_node(registry, "ImageUpscaleWithModel", [](const NodeInputs& in, NodeContext&) {
    const auto& model = *in.get<UpscaleModelValue>("upscale_model").model;
    const at::Tensor& pixels = in.get<ImageValue>("image").pixels;
    at::Tensor upscaled = engine::upscale::upscale_image_with_model(model, pixels);
    return std::vector<Value>{Value::of("IMAGE", ImageValue{std::move(upscaled)})};
  });
}

}  // namespace df::nodes

// Probe command "encode_embedding_prompt": a checkpoint's CLIPTextEncode output for a prompt that
// names textual-inversion embeddings, found in one folder; warnings go to stderr.
#include <string>

#include "engine/checkpoint_bundle.h"
#include "engine/embedding_files.h"
#include "probe.h"

namespace df::probe {
namespace {

// args {"model", "embeddings_dir", "prompt"} -> "context" [1, 77*chunks, C], "pooled" (SDXL).
engine::TensorMap encode_embedding_prompt(const nlohmann::json& args, const engine::TensorMap&) {
  engine::CheckpointLoadRequest request;
  request.path = args.at("model").get<std::string>();
  request.device = "cpu";
  request.dtype = "float32";
  const engine::CheckpointBundle bundle = engine::load_checkpoint_bundle(request);
  const std::vector<std::string> dirs = {args.at("embeddings_dir").get<std::string>()};
  const engine::TextConditioner conditioner = bundle.clip->with_embeddings(
      [dirs](const std::string& name) { return engine::find_embedding_file(dirs, name); });
  const engine::Conditioning cond = conditioner.encode(args.at("prompt").get<std::string>());
  engine::TensorMap out = {{"context", cond.context.to(at::kCPU, at::kFloat)}};
  if (cond.pooled.defined()) out["pooled"] = cond.pooled.to(at::kCPU, at::kFloat);
  return out;
}

DF_PROBE_COMMAND("encode_embedding_prompt", encode_embedding_prompt);

}  // namespace
}  // namespace df::probe

// What node implementations need from the runner: folders, output format, and event sinks.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "graph/node_impl.h"
#include "image/image.h"

namespace df::nodes {

// An image file a node wrote.
struct ArtifactRecord {
  std::string node_id;
  std::string path;       // absolute
  std::string filename;
  std::string subfolder;  // relative to the output (or temp) folder, '/'-separated
  std::string kind;       // "output" (SaveImage) or "temp" (PreviewImage)
  ImageFormat format = ImageFormat::kPng;
  int width = 0;
  int height = 0;
  uint64_t seed = 0;
  uint64_t bytes = 0;
  std::string sha256;
};

// A whole image a node streams to the client instead of saving it (SaveImageWebsocket).
struct StreamedImage {
  std::string node_id;
  std::vector<uint8_t> png;
  int width = 0;
  int height = 0;
  int index = 0;  // within the node's batch
  int count = 0;  // images in the node's batch
};

struct RunEnvironment {
  std::string input_dir;   // LoadImage reads here
  std::string output_dir;  // SaveImage writes here
  std::string temp_dir;    // PreviewImage writes here
  ImageFormat format = ImageFormat::kPng;
  int quality = 95;
  std::function<void(const ArtifactRecord&)> on_artifact;
  // The stage a node is in (load_model, encode_prompt, sample, decode, ...), for progress events.
  std::function<void(const std::string& node_id, const std::string& stage)> on_stage;
  // A JPEG preview of the latent after each sampler step (only when set: previews cost time).
  std::function<void(const std::string& node_id, const std::vector<uint8_t>& jpeg)> on_preview;
  // Whole images streamed to the client, never written to disk (no-op when unset).
  std::function<void(const StreamedImage&)> on_streamed_image;
};

// Tells the environment which stage a node entered (no-op when nobody listens).
inline void report_stage(const RunEnvironment& env, const graph::NodeContext& ctx, const char* stage) {
  if (env.on_stage) env.on_stage(ctx.node_id(), stage);
}

}  // namespace df::nodes

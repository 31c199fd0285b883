// FLUX.1 transformer tensors in BFL naming and the row-level key map to and from diffusers' names.
#include "engine/family/flux/flux_layout.h"

#include <algorithm>
#include <functional>
#include <unordered_map>

#include "core/error.h"

namespace df::engine::flux {
namespace {

// Time and guidance embedders read 256 sinusoidal features.
constexpr int64_t kTimeFeatures = 256;

// BFL's MLPEmbedder: in_layer -> SiLU -> out_layer.
void add_mlp_embedder(std::vector<TensorShape>& layout, const std::string& name, int64_t in,
                      int64_t hidden) {
  add_linear_shapes(layout, name + ".in_layer", hidden, in);
  add_linear_shapes(layout, name + ".out_layer", hidden, hidden);
}

// QKNorm: RMSNorm scales of queries and keys over the head dim.
void add_qk_norm(std::vector<TensorShape>& layout, const std::string& name, int64_t head_dim) {
  layout.push_back({name + ".query_norm.scale", {head_dim}});
  layout.push_back({name + ".key_norm.scale", {head_dim}});
}

void add_double_stream(std::vector<TensorShape>& layout, const std::string& block,
                       const std::string& stream, const FluxConfig& c) {
  const int64_t h = c.hidden_size;
  add_linear_shapes(layout, block + "." + stream + "_mod.lin", 6 * h, h);
  add_linear_shapes(layout, block + "." + stream + "_attn.qkv", 3 * h, h);
  add_qk_norm(layout, block + "." + stream + "_attn.norm", c.head_dim());
  add_linear_shapes(layout, block + "." + stream + "_attn.proj", h, h);
  add_linear_shapes(layout, block + "." + stream + "_mlp.0", c.mlp_hidden(), h);
  add_linear_shapes(layout, block + "." + stream + "_mlp.2", h, c.mlp_hidden());
}

void add_single_block(std::vector<TensorShape>& layout, const std::string& block,
                      const FluxConfig& c) {
  const int64_t h = c.hidden_size;
  add_linear_shapes(layout, block + ".linear1", 3 * h + c.mlp_hidden(), h);
  add_linear_shapes(layout, block + ".linear2", h, h + c.mlp_hidden());
  add_qk_norm(layout, block + ".norm", c.head_dim());
  add_linear_shapes(layout, block + ".modulation.lin", 3 * h, h);
}

// One run of rows shared by a BFL tensor and a diffusers tensor.
struct RowLink {
  std::string bfl;
  int64_t bfl_row;
  std::string diffusers;
  int64_t diffusers_row;
  int64_t rows;
};

class LinkBuilder {
 public:
  // A BFL linear layer stacked from the diffusers layers `parts` (name, output rows).
  void linear(const std::string& bfl, const std::vector<std::pair<std::string, int64_t>>& parts) {
    for (const char* suffix : {".weight", ".bias"}) {
      int64_t row = 0;
      for (const auto& [diffusers, rows] : parts) {
        links_.push_back({bfl + suffix, row, diffusers + suffix, 0, rows});
        row += rows;
      }
    }
  }
  void rename_linear(const std::string& bfl, const std::string& diffusers, int64_t rows) {
    linear(bfl, {{diffusers, rows}});
  }
  void rename(const std::string& bfl, const std::string& diffusers, int64_t rows) {
    links_.push_back({bfl, 0, diffusers, 0, rows});
  }
  // BFL's (shift, scale) modulation stored by diffusers as (scale, shift).
  void swapped_halves(const std::string& bfl, const std::string& diffusers, int64_t half) {
    for (const char* suffix : {".weight", ".bias"}) {
      links_.push_back({bfl + suffix, 0, diffusers + suffix, half, half});
      links_.push_back({bfl + suffix, half, diffusers + suffix, 0, half});
    }
  }
  std::vector<RowLink> take() { return std::move(links_); }

 private:
  std::vector<RowLink> links_;
};

void link_double_block(LinkBuilder& links, int64_t index, const FluxConfig& c) {
  const std::string b = "double_blocks." + std::to_string(index) + ".";
  const std::string d = "transformer_blocks." + std::to_string(index) + ".";
  const int64_t h = c.hidden_size;
  links.rename_linear(b + "img_mod.lin", d + "norm1.linear", 6 * h);
  links.rename_linear(b + "txt_mod.lin", d + "norm1_context.linear", 6 * h);
  links.linear(b + "img_attn.qkv",
               {{d + "attn.to_q", h}, {d + "attn.to_k", h}, {d + "attn.to_v", h}});
  links.linear(b + "txt_attn.qkv",
               {{d + "attn.add_q_proj", h},
                {d + "attn.add_k_proj", h},
                {d + "attn.add_v_proj", h}});
  links.rename(b + "img_attn.norm.query_norm.scale", d + "attn.norm_q.weight", c.head_dim());
  links.rename(b + "img_attn.norm.key_norm.scale", d + "attn.norm_k.weight", c.head_dim());
  links.rename(b + "txt_attn.norm.query_norm.scale", d + "attn.norm_added_q.weight", c.head_dim());
  links.rename(b + "txt_attn.norm.key_norm.scale", d + "attn.norm_added_k.weight", c.head_dim());
  links.rename_linear(b + "img_attn.proj", d + "attn.to_out.0", h);
  links.rename_linear(b + "txt_attn.proj", d + "attn.to_add_out", h);
  links.rename_linear(b + "img_mlp.0", d + "ff.net.0.proj", c.mlp_hidden());
  links.rename_linear(b + "img_mlp.2", d + "ff.net.2", h);
  links.rename_linear(b + "txt_mlp.0", d + "ff_context.net.0.proj", c.mlp_hidden());
  links.rename_linear(b + "txt_mlp.2", d + "ff_context.net.2", h);
}

void link_single_block(LinkBuilder& links, int64_t index, const FluxConfig& c) {
  const std::string b = "single_blocks." + std::to_string(index) + ".";
  const std::string d = "single_transformer_blocks." + std::to_string(index) + ".";
  const int64_t h = c.hidden_size;
  links.linear(b + "linear1", {{d + "attn.to_q", h},
                               {d + "attn.to_k", h},
                               {d + "attn.to_v", h},
                               {d + "proj_mlp", c.mlp_hidden()}});
  links.rename_linear(b + "linear2", d + "proj_out", h);
  links.rename(b + "norm.query_norm.scale", d + "attn.norm_q.weight", c.head_dim());
  links.rename(b + "norm.key_norm.scale", d + "attn.norm_k.weight", c.head_dim());
  links.rename_linear(b + "modulation.lin", d + "norm.linear", 3 * h);
}

std::vector<RowLink> diffusers_links(const FluxConfig& c) {
  LinkBuilder links;
  const int64_t h = c.hidden_size;
  links.rename_linear("img_in", "x_embedder", h);
  links.rename_linear("txt_in", "context_embedder", h);
  const std::pair<const char*, const char*> embedders[] = {
      {"time_in", "time_text_embed.timestep_embedder"},
      {"vector_in", "time_text_embed.text_embedder"},
      {"guidance_in", "time_text_embed.guidance_embedder"}};
  for (const auto& [bfl, diffusers] : embedders) {
    if (std::string(bfl) == "guidance_in" && !c.guidance_embed) continue;
    links.rename_linear(std::string(bfl) + ".in_layer", std::string(diffusers) + ".linear_1", h);
    links.rename_linear(std::string(bfl) + ".out_layer", std::string(diffusers) + ".linear_2", h);
  }
  for (int64_t i = 0; i < c.depth; ++i) link_double_block(links, i, c);
  for (int64_t i = 0; i < c.depth_single_blocks; ++i) link_single_block(links, i, c);
  links.rename_linear("final_layer.linear", "proj_out", c.out_channels);
  links.swapped_halves("final_layer.adaLN_modulation.1", "norm_out.linear", h);
  return links.take();
}

// Groups links by their target side: targets in the order of their first rows, parts by row.
std::vector<TensorAssembly> plan_from_links(
    std::vector<RowLink> links, const std::function<const std::string&(const RowLink&)>& target,
    const std::function<int64_t(const RowLink&)>& target_row,
    const std::function<RowSlice(const RowLink&)>& source) {
  std::vector<TensorAssembly> plan;
  std::unordered_map<std::string, size_t> index;
  std::stable_sort(links.begin(), links.end(), [&](const RowLink& a, const RowLink& b) {
    return target_row(a) < target_row(b);
  });
  for (const RowLink& link : links) {
    const auto [it, added] = index.emplace(target(link), plan.size());
    if (added) plan.push_back({target(link), {}});
    plan[it->second].parts.push_back(source(link));
  }
  return plan;
}

template <typename T>
std::unordered_map<std::string, const T*> by_name(const std::vector<T>& items) {
  std::unordered_map<std::string, const T*> out;
  for (const T& item : items) out.emplace(item.name, &item);
  return out;
}

template <typename T>
const T& require_source(const std::unordered_map<std::string, const T*>& sources,
                        const std::string& name) {
  const auto it = sources.find(name);
  if (it == sources.end()) {
    throw Error(ErrorCode::kCorruptFile, "FLUX transformer weights lack '" + name + "'");
  }
  return *it->second;
}

void require_slice_within(const RowSlice& part, int64_t rows) {
  if (part.first_row + part.rows > rows) {
    throw Error(ErrorCode::kCorruptFile, "FLUX transformer tensor '" + part.source + "' has " +
                                             std::to_string(rows) + " rows, expected at least " +
                                             std::to_string(part.first_row + part.rows));
  }
}

}  // namespace

std::vector<TensorShape> flux_transformer_layout(const FluxConfig& c) {
  c.validate();
  std::vector<TensorShape> layout;
  const int64_t h = c.hidden_size;
  add_linear_shapes(layout, "img_in", h, c.in_channels);
  add_mlp_embedder(layout, "time_in", kTimeFeatures, h);
  add_mlp_embedder(layout, "vector_in", c.vec_in_dim, h);
  if (c.guidance_embed) add_mlp_embedder(layout, "guidance_in", kTimeFeatures, h);
  add_linear_shapes(layout, "txt_in", h, c.context_in_dim);
  for (int64_t i = 0; i < c.depth; ++i) {
    const std::string block = "double_blocks." + std::to_string(i);
    add_double_stream(layout, block, "img", c);
    add_double_stream(layout, block, "txt", c);
  }
  for (int64_t i = 0; i < c.depth_single_blocks; ++i) {
    add_single_block(layout, "single_blocks." + std::to_string(i), c);
  }
  add_linear_shapes(layout, "final_layer.linear", c.out_channels, h);
  add_linear_shapes(layout, "final_layer.adaLN_modulation.1", 2 * h, h);
  return layout;
}

std::vector<TensorAssembly> flux_bfl_from_diffusers(const FluxConfig& config) {
  return plan_from_links(
      diffusers_links(config), [](const RowLink& l) -> const std::string& { return l.bfl; },
      [](const RowLink& l) { return l.bfl_row; },
      [](const RowLink& l) { return RowSlice{l.diffusers, l.diffusers_row, l.rows}; });
}

std::vector<TensorAssembly> flux_diffusers_from_bfl(const FluxConfig& config) {
  return plan_from_links(
      diffusers_links(config), [](const RowLink& l) -> const std::string& { return l.diffusers; },
      [](const RowLink& l) { return l.diffusers_row; },
      [](const RowLink& l) { return RowSlice{l.bfl, l.bfl_row, l.rows}; });
}

std::vector<TensorShape> assembled_layout(const std::vector<TensorShape>& source,
                                          const std::vector<TensorAssembly>& plan) {
  const auto sources = by_name(source);
  std::vector<TensorShape> out;
  for (const TensorAssembly& assembly : plan) {
    TensorShape shape{assembly.target, {}};
    int64_t rows = 0;
    for (const RowSlice& part : assembly.parts) {
      const TensorShape& from = require_source(sources, part.source);
      require_slice_within(part, from.shape.at(0));
      if (shape.shape.empty()) shape.shape = from.shape;
      rows += part.rows;
    }
    shape.shape[0] = rows;
    out.push_back(std::move(shape));
  }
  return out;
}

std::vector<RawTensor> assemble_raw(const std::vector<RawTensor>& source,
                                    const std::vector<TensorAssembly>& plan) {
  const auto sources = by_name(source);
  std::vector<RawTensor> out;
  for (const TensorAssembly& assembly : plan) {
    RawTensor tensor{assembly.target, "", {}, {}};
    for (const RowSlice& part : assembly.parts) {
      const RawTensor& from = require_source(sources, part.source);
      if (from.shape.empty()) {
        throw Error(ErrorCode::kCorruptFile,
                    "FLUX transformer tensor '" + part.source + "' is a scalar");
      }
      require_slice_within(part, from.shape[0]);
      const std::vector<int64_t> row_shape(from.shape.begin() + 1, from.shape.end());
      if (tensor.shape.empty()) {
        tensor.dtype = from.dtype;
        tensor.shape = from.shape;
        tensor.shape[0] = 0;
      } else if (from.dtype != tensor.dtype ||
                 !std::equal(row_shape.begin(), row_shape.end(), tensor.shape.begin() + 1,
                             tensor.shape.end())) {
        throw Error(ErrorCode::kCorruptFile, "FLUX transformer tensor '" + part.source +
                                                 "' does not match the other parts of '" +
                                                 assembly.target + "'");
      }
      const size_t row_bytes = from.shape[0] == 0 ? 0 : from.bytes.size() / from.shape[0];
      const auto first = from.bytes.begin() + static_cast<ptrdiff_t>(part.first_row * row_bytes);
      tensor.bytes.insert(tensor.bytes.end(), first,
                          first + static_cast<ptrdiff_t>(part.rows * row_bytes));
      tensor.shape[0] += part.rows;
    }
    out.push_back(std::move(tensor));
  }
  return out;
}

FluxConfig infer_from_diffusers_keys(const KeyShapes& shapes) {
  KeyShapes bfl;
  const auto copy = [&](const std::string& diffusers, const std::string& bfl_name) {
    const auto it = shapes.find(diffusers);
    if (it != shapes.end()) bfl[bfl_name] = it->second;
  };
  // Block counts: every block's tensors under the BFL block prefix.
  const std::pair<std::string, std::string> blocks[] = {
      {"transformer_blocks.", "double_blocks."}, {"single_transformer_blocks.", "single_blocks."}};
  for (const auto& [name, shape] : shapes) {
    for (const auto& [diffusers, bfl_prefix] : blocks) {
      if (name.compare(0, diffusers.size(), diffusers) == 0) {
        bfl[bfl_prefix + name.substr(diffusers.size())] = shape;
      }
    }
  }
  copy("x_embedder.weight", "img_in.weight");
  copy("proj_out.weight", "final_layer.linear.weight");
  copy("context_embedder.weight", "txt_in.weight");
  copy("time_text_embed.text_embedder.linear_1.weight", "vector_in.in_layer.weight");
  copy("time_text_embed.guidance_embedder.linear_1.weight", "guidance_in.in_layer.weight");
  copy("transformer_blocks.0.attn.norm_q.weight", "double_blocks.0.img_attn.norm.query_norm.scale");
  copy("transformer_blocks.0.ff.net.0.proj.weight", "double_blocks.0.img_mlp.0.weight");
  copy("single_transformer_blocks.0.attn.norm_q.weight", "single_blocks.0.norm.query_norm.scale");
  const auto q = shapes.find("single_transformer_blocks.0.attn.to_q.weight");
  const auto mlp = shapes.find("single_transformer_blocks.0.proj_mlp.weight");
  if (q != shapes.end() && mlp != shapes.end() && q->second.size() == 2 &&
      mlp->second.size() == 2) {
    bfl["single_blocks.0.linear1.weight"] = {3 * q->second[0] + mlp->second[0], q->second[1]};
  }
  return FluxConfig::infer_from_keys(bfl);
}

}  // namespace df::engine::flux

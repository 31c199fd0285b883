// The block ratio inputs of ModelMergeSD1/SD2/SDXL, named by the original (LDM) UNet prefixes
// they apply to; shared by the pack's schemas and nodes.
#pragma once

#include <string>
#include <vector>

namespace df::nodes {

struct MergeBlocks {
  int input_blocks;
  int output_blocks;
  bool label_emb;
};

inline constexpr MergeBlocks kSd1MergeBlocks{12, 12, false};
inline constexpr MergeBlocks kSdxlMergeBlocks{9, 9, true};

// ComfyUI's input names in order: "time_embed.", ["label_emb."], "input_blocks.0", ...,
// "middle_block.0..2", "output_blocks.0", ..., "out.".
inline std::vector<std::string> merge_block_names(const MergeBlocks& blocks) {
  std::vector<std::string> names = {"time_embed."};
  if (blocks.label_emb) names.push_back("label_emb.");
  for (int i = 0; i < blocks.input_blocks; ++i) names.push_back("input_blocks." + std::to_string(i));
  for (int i = 0; i < 3; ++i) names.push_back("middle_block." + std::to_string(i));
  for (int i = 0; i < blocks.output_blocks; ++i) names.push_back("output_blocks." + std::to_string(i));
  names.push_back("out.");
  return names;
}

}  // namespace df::nodes

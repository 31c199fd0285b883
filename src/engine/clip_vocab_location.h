// Finds the standard CLIP vocabulary installed beside the executables (scripts/setup puts it there).
#pragma once

#include <string>

namespace df::engine {

// <folder of `executable`>/../share/dreamforge/clip when that folder holds vocab.json and
// merges.txt (build/bin -> build/share/dreamforge/clip; <prefix>/bin -> <prefix>/share/...),
// else "".
std::string clip_vocab_dir_beside(const std::string& executable);

// clip_vocab_dir_beside() of the running executable: the tokenizer single-file checkpoints use
// when no folder is named (--clip-vocab-dir, DREAMFORGE_CLIP_VOCAB_DIR).
std::string installed_clip_vocab_dir();

}  // namespace df::engine

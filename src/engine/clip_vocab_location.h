// Finds tokenizer data installed beside the executables (scripts/setup puts CLIP's vocabulary and
// T5's tokenizer there).
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
// <folder of the running executable>/../share/dreamforge/<name> (e.g. "t5"), whether or not it
// exists; "" when the executable's path cannot be read.
std::string installed_data_dir(const std::string& name);

}  // namespace df::engine

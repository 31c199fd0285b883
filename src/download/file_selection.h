// Which files of a model repo are downloaded: weights and configs, a diffusers pipeline's files, globs.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace df::download {

// Weights (.safetensors, and PyTorch .ckpt/.pt/.pth/.bin/.pkl checkpoints, which the installer
// accepts only when the weights reader, which runs no code, accepts their bytes), json/yaml/txt
// configs and tokenizer files (vocab.json, merges.txt, ...): data Dream Forge reads, never code
// it runs.
bool is_safe_file_type(const std::string& path);
// Whether `path` has a pickle extension (.ckpt, .pt, .pth, .bin, .pkl, .pickle).
bool is_pickle_file_type(const std::string& path);

// Throws Error(kUnsafeFormat) naming `path` unless is_safe_file_type.
void check_safe_file_type(const std::string& path);

// The files a diffusers pipeline needs, from its model_index.json and the repo's file list:
// model_index.json, and for each component (but safety_checker, feature_extractor and
// image_encoder) its configs, tokenizer files and non-variant weights (sharded or not):
// safetensors where the component has them, else PyTorch .bin files. Throws Error(kUnsupported)
// when a component has weights only in variants (fp16, ...) or other formats, Error(kCorruptFile)
// when the index names a component the repo does not have or is not a pipeline index.
std::vector<std::string> select_pipeline_files(const nlohmann::json& model_index,
                                               const std::vector<std::string>& repo_files);

// The files `selector` names: the one file of that path, or those a glob (*, ?, [...]; '*' stays
// within a folder) matches, sorted. Throws Error(kNotFound) when nothing matches.
std::vector<std::string> select_matching_files(const std::string& selector,
                                               const std::vector<std::string>& repo_files);

}  // namespace df::download

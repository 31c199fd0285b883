// Turns a DGX-Pixels generate request into a Dream Forge job request (a POST /v1/jobs body).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model.h"
#include "pixels/pixels_messages.h"

namespace df::pixels {

// The model a generate request's `model` names among `available` (the enabled, installed ones):
// by model id, else by checkpoint file name with or without its extension (ckpt_name or its last
// part), else by family (sdxl, sd1, flux, ...: the first of that family by id). Throws
// Error(kModelNotFound) naming what was asked and listing the available model ids.
Model resolve_model(const std::string& wanted, const std::vector<Model>& available);

// The /v1 job body for `request` on `model`. A plain request is a generate job (model_id, prompt,
// negative_prompt, width, height, steps, guidance = cfg_scale, count = batch_size, seed when given,
// loras = [{name, strength_model, strength_clip}] for `lora`). animation_frames and tileset_grid
// make workflow jobs built from the same generation graph: the frames as one batch saved as an
// animated WebP (SaveAnimatedWEBP) besides the frames; the tiles as one batch composed into a
// cols x rows sheet (LatentFromBatch, VAEDecode, ImageCompositeMasked onto an EmptyImage).
// Throws Error(kInvalidArgument) naming the wire field for values out of range (size, steps,
// cfg_scale, batch_size 1..100, animation_frames 1..100, tileset_grid cells 1..64, both given).
nlohmann::json job_request_body(const GenerateRequest& request, const Model& model);

}  // namespace df::pixels

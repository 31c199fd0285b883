// What a job runs: the workflow graph compiled from its spec, and its items with their seeds.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/job.h"

namespace df {

// A generate job's spec becomes the canonical text-to-image (or image-to-image) graph; a workflow
// job's spec carries its graph as "workflow".
nlohmann::json job_graph(const Job& job);

// The job's items, seed = base + index. The base is the spec's "seed", else (workflows) the seed
// written in the graph's first sampler, else `draw_seed()`.
std::vector<JobItem> plan_items(const Job& job, const std::function<uint64_t()>& draw_seed);

// The image format a job's outputs use ("png" unless the spec says "jpeg" or "webp").
std::string job_output_format(const Job& job);

// What a ComfyUI client asked to embed in its PNGs (extra_data.extra_pnginfo of a /prompt job, e.g.
// the UI workflow), or null.
nlohmann::json job_extra_pnginfo(const Job& job);

// Jobs whose spec asks for previews (DGX-Pixels clients) and ComfyUI prompts get live latent
// previews, unless a ComfyUI client chose the preview method "none".
bool job_wants_previews(const Job& job);
// The WebSocket client id of a ComfyUI prompt ("" for other jobs).
std::string job_client_id(const Job& job);

// Seconds the job still needs by its estimate made at creation (spec.estimate.seconds scaled by
// the progress left); nullopt without an estimate or once the job has ended.
std::optional<double> estimated_seconds_left(const Job& job);

}  // namespace df

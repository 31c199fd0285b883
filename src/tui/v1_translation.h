// What the terminal client's /v1 link sends and reads: DGX-Pixels requests as /v1 JSON and back.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/job.h"
#include "pixels/pixels_messages.h"

namespace df::tui {

// The POST /v1/jobs body of a generate request: prompt, model_id = model, width, height, steps,
// guidance = cfg_scale, count = batch_size, seed and negative_prompt when set, loras = [lora]
// (strengths 1) when set. Throws Error(kUnsupported) for animation_frames and tileset_grid, which
// only the ZeroMQ endpoint makes.
nlohmann::json v1_job_body(const pixels::GenerateRequest& request);

// The event a /v1 event stream's data (GET /v1/jobs/{id}/events) describes: its progress back in
// data, its time in created_ms. Throws Error(kProtocol) when it is not an event object.
Event event_from_v1_json(const nlohmann::json& event);

// "2026-11-22T13:05:09.123Z" as milliseconds since the Unix epoch; Error(kProtocol) otherwise.
int64_t epoch_ms_from_iso8601(std::string_view text);

// The models of a GET /v1/models answer: name = id, path = local_path ("" when the server keeps
// it to itself), model_type from the kind (loras: lora, vae: vae, else checkpoint), size_mb from
// the listed files' sizes (0 when none are listed).
std::vector<pixels::ModelEntry> model_entries(const nlohmann::json& answer);

// What a job's estimate says it takes in seconds (estimate.seconds), 0 when it has none.
double estimated_seconds(const nlohmann::json& job);

// The message of a /v1 error answer (the envelope's message), or one naming the HTTP status when
// the body is no envelope.
std::string error_message(int status, const std::string& body);

}  // namespace df::tui

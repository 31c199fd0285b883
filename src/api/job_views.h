// The JSON shapes the /v1 API answers with for jobs, items, steps, events and artifacts.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/job.h"

namespace df::api {

// The job as GET /v1/jobs/{id} shows it (steps included when given).
nlohmann::json job_json(const Job& job, const std::vector<Step>* steps = nullptr);
nlohmann::json step_json(const Step& step);
// One event as SSE data and in logs: id, type, code, item_index, message, plain, progress, data.
nlohmann::json event_json(const Event& event);
// One SSE frame: "id: ..\nevent: ..\ndata: ..\n\n".
std::string sse_frame(const Event& event);
nlohmann::json artifact_json(const Artifact& artifact, const std::string& url, int64_t expires_at);

// JSON Schemas of these shapes for the OpenAPI document: a job status name, and a job as
// job_json() makes it.
nlohmann::json job_status_schema();
nlohmann::json job_schema();

}  // namespace df::api

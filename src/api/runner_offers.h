// What all runners offer together, as ComfyUI clients see it: the union of the native node
// definitions and model files with those of every discovered backend.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/backend_catalog.h"

namespace df::api {

// GET /object_info of every runner: `native` (the native runners' document, {} without them),
// then each discovered backend's classes that are not in it yet, as the backend defines them.
// For a class several runners have, the choices of its combo inputs are the union (image uploads
// excepted: those are this service's), so the frontend offers every runner's models; routing
// sends a graph to a runner that has what it names. `only`: just that class (GET /object_info/{class}).
nlohmann::json union_object_info(nlohmann::json native,
                                 const std::vector<backends::BackendStatus>& backends,
                                 const std::optional<std::string>& only = std::nullopt);

// GET /models/{folder} of every runner: `native` then each discovered backend's files of
// `folder` not listed yet.
std::vector<std::string> union_model_names(std::vector<std::string> native,
                                           const std::vector<backends::BackendStatus>& backends,
                                           const std::string& folder);

}  // namespace df::api

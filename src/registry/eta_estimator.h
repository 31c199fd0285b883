// Estimated run time of a job before it starts, learned from the recorded runs of its model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/store.h"

namespace df::registry {

// The job to estimate.
struct EtaRequest {
  std::string model_id;
  int width = 0;
  int height = 0;
  int steps = 0;
  int count = 1;
};

struct EtaEstimate {
  double seconds = 0;
  // One plain sentence on what the estimate rests on, e.g. "Estimated from 4 earlier runs of
  // this model at 512x512."
  std::string basis;
  int samples_used = 0;
};

// At most this many of the most recent matching runs are used, so the estimate follows changes
// (a new driver, a warm cache).
inline constexpr size_t kEtaMaxSamples = 20;

// Estimates `job`'s run time from `history` (the model's recorded runs, most recent first, as
// Store::recent_run_timings reads them; a run's duration includes model loading). Runs of the same model at the
// same width and height are preferred: the median time per item and step, times the job's items
// and steps. When the model only ran at other sizes, the median time per item, step and pixel is
// scaled to the job's size. Medians keep a few unusual runs (a cold start, a busy machine) from
// skewing the estimate. Samples with a non-positive size, steps, items or duration are ignored.
// nullopt when the model has no usable history. Pure.
std::optional<EtaEstimate> estimate_eta(const std::vector<store::RunTiming>& history,
                                        const EtaRequest& job);

// {"seconds" (one decimal), "basis", "samples_used"}: the job view's and progress events' "eta".
// While a job runs, the time left is about seconds * (1 - progress).
nlohmann::json eta_to_json(const EtaEstimate& estimate);

}  // namespace df::registry

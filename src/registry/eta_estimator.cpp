// Estimated run time of a job before it starts, learned from the recorded runs of its model.
#include "registry/eta_estimator.h"

#include <algorithm>
#include <cmath>

namespace df::registry {
namespace {

bool usable(const store::RunTiming& sample) {
  return sample.width > 0 && sample.height > 0 && sample.steps > 0 && sample.items > 0 &&
         sample.duration_ms > 0;
}

double median(std::vector<double> values) {
  const size_t middle = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<long>(middle), values.end());
  const double upper = values[middle];
  if (values.size() % 2 == 1) return upper;
  const double lower =
      *std::max_element(values.begin(), values.begin() + static_cast<long>(middle));
  return (lower + upper) / 2;
}

// Milliseconds per item, step and (when `per_pixel`) pixel of the most recent samples that `take`
// accepts, at most kEtaMaxSamples of them.
template <class Accept>
std::vector<double> unit_costs(const std::vector<store::RunTiming>& history, Accept take, bool per_pixel) {
  std::vector<double> costs;
  for (const store::RunTiming& sample : history) {
    if (costs.size() == kEtaMaxSamples) break;
    if (!usable(sample) || !take(sample)) continue;
    double units = static_cast<double>(sample.items) * sample.steps;
    if (per_pixel) units *= static_cast<double>(sample.width) * sample.height;
    costs.push_back(static_cast<double>(sample.duration_ms) / units);
  }
  return costs;
}

std::string runs_in_words(size_t count) {
  return count == 1 ? "1 earlier run" : std::to_string(count) + " earlier runs";
}

}  // namespace

std::optional<EtaEstimate> estimate_eta(const std::vector<store::RunTiming>& history,
                                        const EtaRequest& job) {
  if (job.width <= 0 || job.height <= 0 || job.steps <= 0 || job.count <= 0) return std::nullopt;
  const double job_units = static_cast<double>(job.count) * job.steps;
  const std::string size = std::to_string(job.width) + "x" + std::to_string(job.height);

  const auto same_size = unit_costs(
      history,
      [&](const store::RunTiming& s) {
        return s.model_id == job.model_id && s.width == job.width && s.height == job.height;
      },
      false);
  if (!same_size.empty()) {
    return EtaEstimate{median(same_size) * job_units / 1000,
                       "Estimated from " + runs_in_words(same_size.size()) +
                           " of this model at " + size + ".",
                       static_cast<int>(same_size.size())};
  }
  const auto other_sizes = unit_costs(
      history, [&](const store::RunTiming& s) { return s.model_id == job.model_id; }, true);
  if (other_sizes.empty()) return std::nullopt;
  const double pixels = static_cast<double>(job.width) * job.height;
  return EtaEstimate{median(other_sizes) * job_units * pixels / 1000,
                     "Estimated from " + runs_in_words(other_sizes.size()) +
                         " of this model at other sizes, scaled to " + size + " by pixel count " +
                         "and steps.",
                     static_cast<int>(other_sizes.size())};
}

nlohmann::json eta_to_json(const EtaEstimate& estimate) {
  return {{"seconds", std::round(estimate.seconds * 10) / 10},
          {"basis", estimate.basis},
          {"samples_used", estimate.samples_used}};
}

}  // namespace df::registry

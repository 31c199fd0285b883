// Prometheus metrics: counters, gauges and histograms with labels, rendered in the text format.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace df::telemetry {

using Labels = std::vector<std::pair<std::string, std::string>>;  // {name, value}, in order

class Metrics {
 public:
  // Declares a metric once (name [a-zA-Z_:][a-zA-Z0-9_:]*); using an undeclared name, or one with the
  // wrong kind, throws Error(kInternal). Histograms need ascending bucket bounds (+Inf is implicit).
  void declare_counter(const std::string& name, const std::string& help);
  void declare_gauge(const std::string& name, const std::string& help);
  void declare_histogram(const std::string& name, const std::string& help, std::vector<double> buckets);

  void increment(const std::string& name, const Labels& labels = {}, double by = 1.0);
  void set_gauge(const std::string& name, const Labels& labels, double value);
  // Replaces every series of a gauge at once (e.g. jobs by status, where a status may vanish).
  void set_gauge_series(const std::string& name, const std::vector<std::pair<Labels, double>>& series);
  void observe(const std::string& name, const Labels& labels, double value);

  // Text exposition format 0.0.4: # HELP, # TYPE, series sorted by labels, label values escaped,
  // histograms as _bucket{le=...} (cumulative), _sum and _count.
  std::string render() const;

 private:
  enum class Kind;
  struct Family;
  void declare(const std::string& name, const std::string& help, Kind kind,
               std::vector<double> buckets);
  // The declared family `name` of kind `kind`; the caller holds mutex_.
  Family& family(const std::string& name, Kind kind);
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Family>> families_;
};

}  // namespace df::telemetry

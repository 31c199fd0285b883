// Prometheus metrics: a thread-safe registry of labelled series and its text exposition.
#include "telemetry/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <set>

#include "core/error.h"

namespace df::telemetry {

enum class Metrics::Kind { kCounter, kGauge, kHistogram };

struct Metrics::Family {
  struct Series {
    double value = 0;                          // counter or gauge value; a histogram's sum
    std::vector<std::uint64_t> bucket_counts;  // histogram: observations per bucket, +Inf last
  };

  static const char* kind_name(Kind kind) {
    switch (kind) {
      case Kind::kCounter:
        return "counter";
      case Kind::kGauge:
        return "gauge";
      case Kind::kHistogram:
        return "histogram";
    }
    return "metric";
  }

  Kind kind;
  std::string help;
  std::vector<double> buckets;  // histogram upper bounds, ascending; +Inf is implicit
  std::map<Labels, Series> series;
};

namespace {

bool is_name_char(char c, bool first, bool colon_allowed) {
  bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  return letter || (colon_allowed && c == ':') || (!first && c >= '0' && c <= '9');
}

// Metric names may contain ':', label names may not.
bool is_valid_name(const std::string& name, bool colon_allowed) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!is_name_char(name[i], i == 0, colon_allowed)) return false;
  }
  return true;
}

void check_labels(const std::string& metric, const Labels& labels, bool histogram) {
  std::set<std::string> seen;
  for (const auto& [name, value] : labels) {
    if (!is_valid_name(name, false) || (histogram && name == "le")) {
      throw Error(ErrorCode::kInternal,
                  "metric " + metric + ": invalid label name \"" + name + "\"");
    }
    if (!seen.insert(name).second) {
      throw Error(ErrorCode::kInternal,
                  "metric " + metric + ": label \"" + name + "\" given twice");
    }
  }
}

// Go-style float text: shortest round-trip digits, "+Inf", "-Inf", "NaN".
std::string format_number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, end);
}

// Escapes '\\' and newlines (HELP text), and '"' too for label values.
std::string escape(const std::string& text, bool quote) {
  std::string escaped;
  for (char c : text) {
    if (c == '\\') {
      escaped += "\\\\";
    } else if (c == '\n') {
      escaped += "\\n";
    } else if (quote && c == '"') {
      escaped += "\\\"";
    } else {
      escaped += c;
    }
  }
  return escaped;
}

// {a="x",b="y"} (with `le` last when given), or nothing for no labels.
std::string format_labels(const Labels& labels, const std::string* le = nullptr) {
  std::string text;
  for (const auto& [name, value] : labels) {
    text += (text.empty() ? "" : ",") + name + "=\"" + escape(value, true) + "\"";
  }
  if (le) text += (text.empty() ? "le=\"" : ",le=\"") + *le + "\"";
  return text.empty() ? text : "{" + text + "}";
}

}  // namespace

void Metrics::declare_counter(const std::string& name, const std::string& help) {
  declare(name, help, Kind::kCounter, {});
}

void Metrics::declare_gauge(const std::string& name, const std::string& help) {
  declare(name, help, Kind::kGauge, {});
}

void Metrics::declare_histogram(const std::string& name, const std::string& help,
                                std::vector<double> buckets) {
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    if (!std::isfinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1])) {
      throw Error(ErrorCode::kInternal,
                  "histogram " + name + ": bucket bounds must be finite and ascending");
    }
  }
  declare(name, help, Kind::kHistogram, std::move(buckets));
}

void Metrics::declare(const std::string& name, const std::string& help, Kind kind,
                      std::vector<double> buckets) {
  if (!is_valid_name(name, true)) {
    throw Error(ErrorCode::kInternal, "invalid metric name \"" + name + "\"");
  }
  std::lock_guard lock(mutex_);
  if (families_.contains(name)) {
    throw Error(ErrorCode::kInternal, "metric " + name + " is declared twice");
  }
  families_[name] = std::make_shared<Family>(Family{kind, help, std::move(buckets), {}});
}

Metrics::Family& Metrics::family(const std::string& name, Kind kind) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    throw Error(ErrorCode::kInternal, "metric " + name + " is not declared");
  }
  if (it->second->kind != kind) {
    throw Error(ErrorCode::kInternal, "metric " + name + " is a " +
                                          Family::kind_name(it->second->kind) + ", not a " +
                                          Family::kind_name(kind));
  }
  return *it->second;
}

void Metrics::increment(const std::string& name, const Labels& labels, double by) {
  if (!(by >= 0) || std::isinf(by)) {
    throw Error(ErrorCode::kInternal,
                "counter " + name + " can only grow by a finite amount, not " + format_number(by));
  }
  check_labels(name, labels, false);
  std::lock_guard lock(mutex_);
  family(name, Kind::kCounter).series[labels].value += by;
}

void Metrics::set_gauge(const std::string& name, const Labels& labels, double value) {
  check_labels(name, labels, false);
  std::lock_guard lock(mutex_);
  family(name, Kind::kGauge).series[labels].value = value;
}

void Metrics::set_gauge_series(const std::string& name,
                               const std::vector<std::pair<Labels, double>>& series) {
  std::map<Labels, Family::Series> replacement;
  for (const auto& [labels, value] : series) {
    check_labels(name, labels, false);
    replacement[labels].value = value;
  }
  std::lock_guard lock(mutex_);
  family(name, Kind::kGauge).series = std::move(replacement);
}

void Metrics::observe(const std::string& name, const Labels& labels, double value) {
  if (std::isnan(value)) throw Error(ErrorCode::kInternal, "histogram " + name + ": observed NaN");
  check_labels(name, labels, true);
  std::lock_guard lock(mutex_);
  Family& histogram = family(name, Kind::kHistogram);
  Family::Series& series = histogram.series[labels];
  if (series.bucket_counts.empty()) series.bucket_counts.resize(histogram.buckets.size() + 1);
  auto bucket = std::lower_bound(histogram.buckets.begin(), histogram.buckets.end(), value);
  ++series.bucket_counts[bucket - histogram.buckets.begin()];
  series.value += value;
}

std::string Metrics::render() const {
  std::lock_guard lock(mutex_);
  std::string text;
  for (const auto& [name, family] : families_) {
    text += "# HELP " + name + " " + escape(family->help, false) + "\n";
    text += "# TYPE " + name + " " + Family::kind_name(family->kind) + "\n";
    for (const auto& [labels, series] : family->series) {
      if (family->kind != Kind::kHistogram) {
        text += name + format_labels(labels) + " " + format_number(series.value) + "\n";
        continue;
      }
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < series.bucket_counts.size(); ++i) {
        cumulative += series.bucket_counts[i];
        std::string le = i < family->buckets.size() ? format_number(family->buckets[i]) : "+Inf";
        text += name + "_bucket" + format_labels(labels, &le) + " " + std::to_string(cumulative) +
                "\n";
      }
      text += name + "_sum" + format_labels(labels) + " " + format_number(series.value) + "\n";
      text += name + "_count" + format_labels(labels) + " " + std::to_string(cumulative) + "\n";
    }
  }
  return text;
}

}  // namespace df::telemetry

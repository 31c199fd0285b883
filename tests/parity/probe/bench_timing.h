// Wall-clock and peak-memory readings for the probe's benchmark commands.
#pragma once

#include <sys/resource.h>

#include <chrono>

namespace df::probe {

using BenchClock = std::chrono::steady_clock;

inline double seconds_since(BenchClock::time_point start) {
  return std::chrono::duration<double>(BenchClock::now() - start).count();
}

// The process's peak resident memory so far, in MB.
inline double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

}  // namespace df::probe

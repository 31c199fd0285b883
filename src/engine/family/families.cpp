// The family table.
#include "engine/family/families.h"

#include <array>

#include "core/error.h"

namespace df::engine {
namespace {

LatentFormat sd_latents(double scale) { return LatentFormat{4, scale, 0.0, {}}; }
LatentFormat flux_latents() { return LatentFormat{16, 0.3611, 0.1159, {}}; }
LatentFormat sd3_latents() { return LatentFormat{16, 1.5305, 0.0609, {}}; }

const std::array<FamilyTraits, 7>& family_table() {
  static const std::array<FamilyTraits, 7> table = {{
      {Family::kSD1, sd_latents(0.18215), 512, false},
      {Family::kSD2, sd_latents(0.18215), 768, false},
      {Family::kSDXL, sd_latents(0.13025), 1024, false},
      {Family::kSDXLRefiner, sd_latents(0.13025), 1024, false},
      {Family::kFlux, flux_latents(), 1024, true},
      {Family::kSD3, sd3_latents(), 1024, true},
      {Family::kZImage, flux_latents(), 1024, true},
  }};
  return table;
}

}  // namespace

const FamilyTraits& family_traits(Family family) {
  for (const FamilyTraits& traits : family_table()) {
    if (traits.family == family) return traits;
  }
  throw Error(ErrorCode::kInternal, "no traits for family " + family_name(family));
}

NoiseSchedule default_flow_sampling(Family family, bool distilled_guidance) {
  switch (family) {
    case Family::kFlux:
      return distilled_guidance ? NoiseSchedule::flux_flow(1.15)
                                : NoiseSchedule::discrete_flow(1.0, 1.0);
    case Family::kSD3:
      return NoiseSchedule::discrete_flow(3.0, 1000.0);
    case Family::kZImage:
      return NoiseSchedule::discrete_flow(3.0, 1.0);
    default:
      throw Error(ErrorCode::kInvalidArgument,
                  family_name(family) + " models take their schedule from their scheduler config");
  }
}

}  // namespace df::engine

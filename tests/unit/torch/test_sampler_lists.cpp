// The node schemas (torch-free) offer exactly the samplers and schedulers the engine implements.
#include <gtest/gtest.h>

#include <set>

#include "engine/samplers.h"
#include "engine/schedulers.h"
#include "nodes/packs/node_packs.h"

namespace df {
namespace {

std::set<std::string> as_set(const std::vector<std::string>& names) {
  return {names.begin(), names.end()};
}

TEST(SamplerLists, SchemasOfferWhatTheEngineRunsInTheEnginesOrder) {
  EXPECT_EQ(as_set(nodes::supported_samplers()), as_set(engine::sampler_names()));
  EXPECT_EQ(as_set(nodes::supported_schedulers()), as_set(engine::scheduler_names()));
  EXPECT_EQ(nodes::supported_samplers(), engine::sampler_names());
  EXPECT_EQ(nodes::supported_schedulers(), engine::scheduler_names());
}

}  // namespace
}  // namespace df

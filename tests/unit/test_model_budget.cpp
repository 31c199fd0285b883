// Tests of the model budget: least-recently-used eviction under host and device limits, pinning.
#include <gtest/gtest.h>

#include "gpu/model_budget.h"

namespace df::gpu {
namespace {

using Keys = std::vector<std::string>;

BudgetEntry entry(const std::string& key, int64_t host, int64_t device = 0) {
  return {key, "checkpoint", key, {host, device}};
}

Keys keys_of(const ModelBudget& budget) {
  Keys keys;
  for (const auto& e : budget.entries()) keys.push_back(e.key);
  return keys;
}

TEST(ModelBudget, AdmitsWhileEverythingFits) {
  ModelBudget budget({100, 100});
  EXPECT_EQ(budget.admit(entry("a", 40, 10)), Keys{});
  EXPECT_EQ(budget.admit(entry("b", 60, 90)), Keys{});
  EXPECT_EQ(keys_of(budget), (Keys{"a", "b"}));
  EXPECT_EQ(budget.total().host_bytes, 100);
  EXPECT_EQ(budget.total().device_bytes, 100);
}

TEST(ModelBudget, EvictsLeastRecentlyUsedFirst) {
  ModelBudget budget({100, 0});
  budget.admit(entry("a", 30));
  budget.admit(entry("b", 30));
  budget.admit(entry("c", 30));
  EXPECT_TRUE(budget.touch("a"));  // b is now the least recently used
  EXPECT_EQ(budget.evictions_for({40, 0}), Keys{"b"});
  EXPECT_EQ(budget.evictions_for({70, 0}), (Keys{"b", "c"}));
  EXPECT_EQ(budget.admit(entry("d", 40)), Keys{"b"});
  EXPECT_EQ(keys_of(budget), (Keys{"c", "a", "d"}));
}

TEST(ModelBudget, EitherLimitCanForceEviction) {
  ModelBudget budget({1000, 100});
  budget.admit(entry("a", 10, 60));
  budget.admit(entry("b", 10, 30));
  EXPECT_EQ(budget.admit(entry("c", 10, 20)), Keys{"a"}) << "device bytes over the limit";
  ModelBudget host_bound({100, 1000});
  host_bound.admit(entry("a", 60, 0));
  EXPECT_EQ(host_bound.admit(entry("b", 50, 0)), Keys{"a"}) << "host bytes over the limit";
}

TEST(ModelBudget, AnEntryBiggerThanTheBudgetIsAdmittedAlone) {
  ModelBudget budget({100, 100});
  budget.admit(entry("a", 10, 10));
  budget.admit(entry("b", 10, 10));
  EXPECT_EQ(budget.admit(entry("huge", 500, 0)), (Keys{"a", "b"}));
  EXPECT_EQ(keys_of(budget), Keys{"huge"});
  EXPECT_EQ(budget.admit(entry("next", 10, 10)), Keys{"huge"});
  EXPECT_EQ(keys_of(budget), Keys{"next"});
}

TEST(ModelBudget, PinnedEntriesAreNeverEvicted) {
  ModelBudget budget({100, 0});
  budget.admit(entry("a", 50));
  budget.admit(entry("b", 50));
  budget.set_pinned("a", true);
  EXPECT_EQ(budget.admit(entry("c", 50)), Keys{"b"});
  EXPECT_EQ(budget.admit(entry("d", 100)), Keys{"c"}) << "a stays although d alone fills the budget";
  EXPECT_EQ(keys_of(budget), (Keys{"a", "d"}));
  budget.set_pinned("a", false);
  EXPECT_EQ(budget.evictions_for({0, 0}), Keys{"a"}) << "over the budget while a was pinned";
}

TEST(ModelBudget, ReadmittingAKeyReplacesItsEntry) {
  ModelBudget budget({100, 0});
  budget.admit(entry("a", 40));
  budget.admit(entry("b", 40));
  EXPECT_EQ(budget.admit(entry("a", 60)), Keys{}) << "the old a does not count against the new one";
  EXPECT_EQ(keys_of(budget), (Keys{"b", "a"}));
  EXPECT_EQ(budget.total().host_bytes, 100);
}

TEST(ModelBudget, TouchRemoveAndClear) {
  ModelBudget budget({100, 100});
  EXPECT_FALSE(budget.touch("missing"));
  budget.admit(entry("a", 1));
  budget.admit(entry("b", 1));
  EXPECT_TRUE(budget.contains("a"));
  budget.remove("a");
  EXPECT_FALSE(budget.contains("a"));
  EXPECT_EQ(keys_of(budget), Keys{"b"});
  budget.clear();
  EXPECT_TRUE(budget.entries().empty());
  EXPECT_EQ(budget.total().host_bytes, 0);
}

}  // namespace
}  // namespace df::gpu

// Tests of the model cache: loads measured by the memory they keep, LRU eviction under the
// budget, models in use (or their parts) never evicted, reloads counted, clear.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "nodes/model_cache.h"

namespace df::nodes {
namespace {

constexpr int64_t kMiB = 1 << 20;

// A "model" of `mib` MiB of float32 weights on the CPU.
struct FakeModel {
  at::Tensor weights;
};

std::function<CachedModel()> load_of(int64_t mib) {
  return [mib] {
    auto model = std::make_shared<const FakeModel>(FakeModel{at::ones({mib * kMiB / 4}, at::kFloat)});
    return CachedModel{model, {}};
  };
}

std::shared_ptr<const FakeModel> get(ModelCache& cache, const std::string& name, int64_t mib) {
  return cache.get<FakeModel>("checkpoint", name, name, load_of(mib));
}

std::vector<std::string> names_of(const ModelCache& cache) {
  std::vector<std::string> names;
  for (const auto& model : cache.loaded()) names.push_back(model.name);
  return names;
}

TEST(ModelCache, MeasuresAModelByTheHostMemoryItsLoadKept) {
  ModelCache cache({64 * kMiB, 0}, at::kCPU);
  get(cache, "a", 4);
  const auto loaded = cache.loaded();
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded[0].kind, "checkpoint");
  // The tensor and the few small allocations its creation keeps.
  EXPECT_NEAR(double(loaded[0].bytes.host_bytes), double(4 * kMiB), double(kMiB) / 4);
  EXPECT_EQ(loaded[0].bytes.device_bytes, 0);
  EXPECT_EQ(cache.total().host_bytes, loaded[0].bytes.host_bytes);
}

TEST(ModelCache, ReturnsTheCachedModelWithoutLoadingAgain) {
  ModelCache cache({64 * kMiB, 0}, at::kCPU);
  const auto first = get(cache, "a", 1);
  EXPECT_EQ(get(cache, "a", 1), first);
  EXPECT_EQ(cache.loads(), 1);
}

TEST(ModelCache, EvictsTheLeastRecentlyUsedModelBeyondTheBudget) {
  ModelCache cache({10 * kMiB, 0}, at::kCPU);
  get(cache, "a", 4);
  get(cache, "b", 4);
  get(cache, "a", 4);  // b is now the least recently used
  get(cache, "c", 4);
  EXPECT_EQ(names_of(cache), (std::vector<std::string>{"c", "a"}));
  get(cache, "b", 4);  // evicted earlier: loaded again
  EXPECT_EQ(cache.loads(), 4);
  EXPECT_EQ(names_of(cache), (std::vector<std::string>{"b", "c"}));
}

TEST(ModelCache, AModelLargerThanTheBudgetIsKeptAlone) {
  ModelCache cache({2 * kMiB, 0}, at::kCPU);
  get(cache, "a", 1);
  get(cache, "big", 4);
  EXPECT_EQ(names_of(cache), std::vector<std::string>{"big"});
}

TEST(ModelCache, ModelsInUseAreNotEvicted) {
  ModelCache cache({6 * kMiB, 0}, at::kCPU);
  const auto held = get(cache, "a", 4);  // a graph holds it
  get(cache, "b", 4);
  EXPECT_EQ(names_of(cache), (std::vector<std::string>{"b", "a"}));
}

// A model made of parts that graphs may hold on their own (as a checkpoint's MODEL, CLIP, VAE).
struct FakeBundle {
  std::shared_ptr<const FakeModel> unet;
};

TEST(ModelCache, APartHeldElsewhereKeepsItsModelInUse) {
  ModelCache cache({6 * kMiB, 0}, at::kCPU);
  auto bundle = cache.get<FakeBundle>("checkpoint", "a", "a", [] {
    auto unet = std::make_shared<const FakeModel>(FakeModel{at::ones({kMiB}, at::kFloat)});
    auto loaded = std::make_shared<const FakeBundle>(FakeBundle{unet});
    return CachedModel{loaded, {unet}};
  });
  auto held_part = bundle->unet;  // a graph holds the part, not the bundle
  bundle.reset();
  get(cache, "b", 4);
  EXPECT_EQ(names_of(cache), (std::vector<std::string>{"b", "a"})) << "its part is held";
  held_part.reset();
  get(cache, "c", 4);
  EXPECT_EQ(names_of(cache), std::vector<std::string>{"c"});
}

TEST(ModelCache, ClearDropsEveryModelAndKeepsTheLoadCount) {
  ModelCache cache({64 * kMiB, 0}, at::kCPU);
  get(cache, "a", 1);
  get(cache, "b", 1);
  cache.clear();
  EXPECT_TRUE(cache.loaded().empty());
  EXPECT_EQ(cache.total().host_bytes, 0);
  EXPECT_EQ(cache.loads(), 2);
}

TEST(ModelCache, ALoadThatRunsOutOfMemoryIsRetriedAfterEvictingIdleModels) {
  ModelCache cache({64 * kMiB, 0}, at::kCPU);
  get(cache, "a", 1);
  int attempts = 0;
  cache.get<FakeModel>("checkpoint", "b", "b", [&] {
    if (++attempts == 1) throw std::bad_alloc();
    return load_of(1)();
  });
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ(names_of(cache), std::vector<std::string>{"b"});
  EXPECT_THROW(cache.get<FakeModel>("checkpoint", "c", "c", [&]() -> CachedModel { throw std::bad_alloc(); }),
               std::bad_alloc)
      << "a load that fails again after the eviction fails";
  EXPECT_TRUE(cache.loaded().empty());
}

}  // namespace
}  // namespace df::nodes

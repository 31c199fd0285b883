// Unit tests for the API's view of the backends: seeded from the catalog, replaced on its change
// notices, in configuration order, safe to drop before the catalog.
#include <gtest/gtest.h>

#include "api/backend_view.h"
#include "fake_comfy_server.h"

namespace df::api {
namespace {

using test::FakeComfyServer;

backends::BackendSpec running(const std::string& name, const std::string& url) {
  backends::BackendSpec spec;
  spec.name = name;
  spec.url = url;
  return spec;
}

constexpr backends::BackendCatalog::Timing kEveryCheck{0, 1000, 5000};

TEST(BackendView, FollowsTheCatalogsChangesInConfigurationOrder) {
  FakeComfyServer server;
  backends::BackendCatalog catalog(
      {{running("zeta", server.url()), running("alpha", "http://127.0.0.1:1")}}, kEveryCheck);
  catalog.check("zeta");
  BackendView view(catalog);
  const BackendView::States seeded = view.states();
  ASSERT_EQ(seeded->size(), 2u);
  EXPECT_EQ((*seeded)[0].spec.name, "zeta");
  EXPECT_TRUE((*seeded)[0].up);
  EXPECT_EQ((*seeded)[1].spec.name, "alpha");
  EXPECT_FALSE((*seeded)[1].discovered);

  server.with([](auto& state) { state.object_info["CustomNode"] = {{"input", nlohmann::json::object()}}; });
  catalog.check("zeta");
  const BackendView::States changed = view.states();
  EXPECT_TRUE((*changed)[0].offer.node_types.contains("CustomNode"));
  EXPECT_FALSE((*seeded)[0].offer.node_types.contains("CustomNode"));  // a reader keeps its copy
  EXPECT_EQ(view.states(), changed);  // shared until the next change, not copied per read
}

TEST(BackendView, MayGoBeforeTheCatalog) {
  FakeComfyServer server;
  backends::BackendCatalog catalog({{running("studio", server.url())}}, kEveryCheck);
  { BackendView view(catalog); }
  catalog.check("studio");  // tells a listener that is gone
  EXPECT_TRUE(catalog.find("studio")->up);
}

}  // namespace
}  // namespace df::api

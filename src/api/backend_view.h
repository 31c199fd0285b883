// The backends' states as the API reads them on every request: a shared copy that the catalog's
// change notices replace, so a request copies no backend's /object_info.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "backends/backend_catalog.h"

namespace df::api {

class BackendView {
 public:
  using States = std::shared_ptr<const std::vector<backends::BackendStatus>>;

  // Listens to `catalog` and reads its states once now. The view may go before the catalog: its
  // change notices then go nowhere.
  explicit BackendView(backends::BackendCatalog& catalog);

  // Up/down and the offers as of the last change, in configuration order; queue_remaining and
  // checked_ms as of that change too (health reads the catalog itself).
  States states() const;

 private:
  struct Shared {
    backends::BackendConfig config;
    std::mutex mutex;
    States states = std::make_shared<const std::vector<backends::BackendStatus>>();
    void update(const backends::BackendStatus& status);
  };
  std::shared_ptr<Shared> shared_;
};

}  // namespace df::api

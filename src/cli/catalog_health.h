// The backend catalog as the workers see it: up or down and queue length by runner id.
#pragma once

#include <string>

#include "backends/backend_catalog.h"
#include "worker/backend_health.h"

namespace df::cli {

class CatalogHealth final : public worker::BackendHealth {
 public:
  explicit CatalogHealth(backends::BackendCatalog& catalog) : catalog_(catalog) {}

  // A backend the catalog does not know is down; one Dream Forge starts (`command`) counts as up
  // while it is not running, since a job starts it.
  bool up(const std::string& runner_id) const override;
  int queue_remaining(const std::string& runner_id) const override;
  void mark_down(const std::string& runner_id, const std::string& reason) override;

 private:
  backends::BackendCatalog& catalog_;
};

}  // namespace df::cli

// The backend catalog as the workers see it.
#include "cli/catalog_health.h"

namespace df::cli {
namespace {

// "backend:<name>" -> "<name>".
std::string backend_name(const std::string& runner_id) {
  const std::string prefix = "backend:";
  return runner_id.starts_with(prefix) ? runner_id.substr(prefix.size()) : runner_id;
}

}  // namespace

bool CatalogHealth::up(const std::string& runner_id) const {
  const auto status = catalog_.state(backend_name(runner_id));
  // A server Dream Forge starts does not answer until a job needs it: it is started on demand.
  return status && (status->up || status->spec.started_by_us());
}

int CatalogHealth::queue_remaining(const std::string& runner_id) const {
  const auto status = catalog_.state(backend_name(runner_id));
  return status ? status->queue_remaining : 0;
}

void CatalogHealth::mark_down(const std::string& runner_id, const std::string& reason) {
  catalog_.mark_down(backend_name(runner_id), reason);
}

}  // namespace df::cli

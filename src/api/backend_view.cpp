// The backends' states as the API reads them on every request.
#include "api/backend_view.h"

namespace df::api {

BackendView::BackendView(backends::BackendCatalog& catalog)
    : shared_(std::make_shared<Shared>()) {
  shared_->config = catalog.config();
  // Listening first: a change after the read below replaces what the read saw.
  catalog.on_change([weak = std::weak_ptr<Shared>(shared_)](const backends::BackendStatus& status) {
    if (auto shared = weak.lock()) shared->update(status);
  });
  for (const auto& spec : shared_->config.backends) {
    if (auto status = catalog.find(spec.name)) shared_->update(*status);
  }
}

BackendView::States BackendView::states() const {
  std::lock_guard lock(shared_->mutex);
  return shared_->states;
}

void BackendView::Shared::update(const backends::BackendStatus& status) {
  std::lock_guard lock(mutex);
  std::vector<backends::BackendStatus> next;
  for (const auto& spec : config.backends) {
    if (spec.name == status.spec.name) {
      next.push_back(status);
      continue;
    }
    for (const auto& known : *states) {
      if (known.spec.name == spec.name) next.push_back(known);
    }
  }
  states = std::make_shared<const std::vector<backends::BackendStatus>>(std::move(next));
}

}  // namespace df::api

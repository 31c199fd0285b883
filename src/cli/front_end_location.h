// Finds the ComfyUI web frontend to serve: --front-end-root, else the one installed in the venv.
#pragma once

#include <string>

namespace df::cli {

// The `static` folder of the comfyui-frontend-package installed in the project's virtual
// environment next to this build (<repo>/.venv/lib/python3.*/site-packages/...), or "" when there is
// none.
std::string installed_front_end_root();

}  // namespace df::cli

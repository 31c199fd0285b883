// Helpers shared by the graph unit tests: workflow fixtures and error-code expectations.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace df::graph_test {

// tests/unit/data/workflows/<name>, parsed.
inline nlohmann::json load_workflow_json(const std::string& name) {
  std::ifstream file(std::string(DF_TEST_DATA_DIR) + "/workflows/" + name);
  EXPECT_TRUE(file.good()) << "missing test workflow " << name;
  return nlohmann::json::parse(file);
}

// The legacy SD 1.5 default graph of the ComfyUI frontend (nodes 3..9, SaveImage is 9).
inline nlohmann::json legacy_sd15() { return load_workflow_json("legacy_sd15_api.json"); }

// Runs `action` and returns the df::Error it throws; fails the test when it throws none.
template <class Action>
df::Error expect_error(Action&& action, df::ErrorCode expected_code) {
  try {
    action();
  } catch (const df::Error& e) {
    EXPECT_EQ(e.code(), expected_code) << e.what();
    return e;
  }
  ADD_FAILURE() << "expected a df::Error";
  return df::Error(df::ErrorCode::kInternal, "no error thrown");
}

}  // namespace df::graph_test

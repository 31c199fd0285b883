// A test fixture base holding one tiny SD 1.x checkpoint, loaded on the CPU in float32, for all
// tests of a suite (written to a temporary folder named after the suite and the process).
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include "engine/checkpoint_bundle.h"
#include "engine/tiny_model.h"

namespace df::test {

// Derive as `class MySuite : public TinyModelSuite<MySuite, seed>`; tests read `bundle`. A UNet
// of 9 (inpainting) or 8 (InstructPix2Pix) input channels reads extra inputs.
template <class Suite, uint64_t kSeed, int kUnetInChannels = 4>
class TinyModelSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir = std::filesystem::temp_directory_path() /
          ("df_tiny_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_suite()->name());
    engine::write_tiny_model((dir / "tiny").string(), engine::Family::kSD1, kSeed,
                             kUnetInChannels);
    bundle = std::make_unique<engine::CheckpointBundle>(
        engine::load_checkpoint_bundle({(dir / "tiny").string(), "cpu", "float32", ""}));
  }
  static void TearDownTestSuite() {
    bundle.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }

  static inline std::filesystem::path dir;
  static inline std::unique_ptr<engine::CheckpointBundle> bundle;
};

}  // namespace df::test

// Unit tests for df::Error and the stable error-code names.
#include <gtest/gtest.h>

#include "core/error.h"

namespace df {

TEST(Error, CodeNamesAreStableAndRoundTrip) {
  EXPECT_EQ(error_code_name(ErrorCode::kInvalidArgument), "validation");
  EXPECT_EQ(error_code_name(ErrorCode::kOutOfMemory), "oom");
  EXPECT_EQ(error_code_name(ErrorCode::kUnsafeFormat), "unsafe_format");
  EXPECT_EQ(error_code_name(ErrorCode::kInsufficientMemory), "insufficient_memory");
  for (auto code : {ErrorCode::kModelNotFound, ErrorCode::kCorruptFile, ErrorCode::kCanceled,
                    ErrorCode::kTimeout, ErrorCode::kRunnerCrashed, ErrorCode::kProtocol}) {
    EXPECT_EQ(error_code_from_name(error_code_name(code)), code);
  }
  EXPECT_EQ(error_code_from_name("no such code"), ErrorCode::kInternal);
}

TEST(Error, CarriesMessageAndDetails) {
  Error e(ErrorCode::kCorruptFile, "bad header", {{"path", "/x"}});
  EXPECT_STREQ(e.what(), "bad header");
  EXPECT_EQ(e.code_name(), "corrupt_file");
  EXPECT_EQ(e.details()["path"], "/x");
}

}  // namespace df

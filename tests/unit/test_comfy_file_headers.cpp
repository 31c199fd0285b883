// Tests of the headers of served files: no active content types, unbreakable dispositions.
#include <gtest/gtest.h>

#include "api/comfy_file_headers.h"

namespace df::api {
namespace {

TEST(ComfyFileHeaders, ActiveContentIsServedAsBytes) {
  EXPECT_EQ(served_content_type("a.png"), "image/png");
  EXPECT_EQ(served_content_type("flow.json"), "application/json");
  for (const char* name : {"x.html", "x.htm", "x.js", "x.css", "x.svg", "x.xhtml"}) {
    EXPECT_EQ(served_content_type(name), "application/octet-stream") << name;
  }
}

TEST(ComfyFileHeaders, DispositionNamesCannotBreakTheHeader) {
  EXPECT_EQ(content_disposition("", "a.png"), "filename=\"a.png\"");
  EXPECT_EQ(content_disposition("attachment", "a.png"), "attachment; filename=\"a.png\"");
  EXPECT_EQ(content_disposition("", "a\"b\\c\r\nSet-Cookie: x.png"),
            "filename=\"a\\\"b\\\\cSet-Cookie: x.png\"");
}

}  // namespace
}  // namespace df::api

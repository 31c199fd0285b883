// Tests of the multipart/form-data parser: boundaries, parts, fields, and malformed bodies refused.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "api/multipart.h"
#include "core/error.h"

namespace df::api {
namespace {

using namespace std::string_literals;

ErrorCode code_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& error) {
    return error.code();
  }
  ADD_FAILURE() << "no error thrown";
  return ErrorCode::kInternal;
}

TEST(Multipart, BoundaryFromContentType) {
  EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=----WebKitFormBoundaryAbc123"),
            "----WebKitFormBoundaryAbc123");
  EXPECT_EQ(multipart_boundary("Multipart/Form-Data;charset=utf-8; BOUNDARY=\"a b'()+_,-./:=?\""),
            "a b'()+_,-./:=?");
}

TEST(Multipart, BoundaryRefusedWhenMissingOrMalformed) {
  for (const char* type :
       {"application/json", "multipart/form-data", "multipart/form-data; boundary=",
        "multipart/form-data; boundary=a;b", "multipart/form-data; boundary=\"unclosed",
        "multipart/mixed; boundary=x", "multipart/form-data; boundary=\"trailing \"",
        "multipart/form-data; boundary=has\"quote"}) {
    EXPECT_EQ(code_of([&] { multipart_boundary(type); }), ErrorCode::kBadRequest) << type;
  }
  EXPECT_EQ(
      code_of([] { multipart_boundary("multipart/form-data; boundary=" + std::string(71, 'x')); }),
      ErrorCode::kBadRequest);
}

TEST(Multipart, ParsesFieldsAndFiles) {
  const std::string body =
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"image\"; filename=\"cat (1).png\"\r\n"
      "Content-Type: image/png\r\n"
      "\r\n"
      "\x89PNG\r\n\x1a\n\0binary\r\n-- not a boundary\r\n"s +
      "\r\n--XyZ\r\n"
      "content-disposition: form-data; name=overwrite\r\n"
      "\r\n"
      "true\r\n"
      "--XyZ--\r\n";
  const auto parts = parse_multipart(body, "XyZ");
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].name, "image");
  ASSERT_TRUE(parts[0].filename);
  EXPECT_EQ(*parts[0].filename, "cat (1).png");
  EXPECT_EQ(parts[0].content_type, "image/png");
  EXPECT_EQ(parts[0].body, "\x89PNG\r\n\x1a\n\0binary\r\n-- not a boundary\r\n"s);
  EXPECT_EQ(parts[1].name, "overwrite");
  EXPECT_FALSE(parts[1].filename);
  EXPECT_EQ(parts[1].content_type, "text/plain");
  EXPECT_EQ(parts[1].body, "true");
  EXPECT_EQ(find_part(parts, "overwrite"), &parts[1]);
  EXPECT_EQ(find_part(parts, "subfolder"), nullptr);
}

TEST(Multipart, AcceptsPreambleEpilogueEmptyPartsAndPadding) {
  const std::string body =
      "ignored preamble\r\n"
      "--b  \t\r\n"
      "Content-Disposition: form-data; name=\"a\"; filename=\"\"\r\n"
      "\r\n"
      "\r\n--b\r\n"
      "Content-Disposition: form-data; name=\"q\\\"uote\"\r\n"
      "\r\n"
      "x\r\n"
      "--b--\r\nignored epilogue";
  const auto parts = parse_multipart(body, "b");
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].name, "a");
  EXPECT_EQ(parts[0].filename, std::optional<std::string>(""));
  EXPECT_EQ(parts[0].body, "");
  EXPECT_EQ(parts[1].name, "q\"uote");
  EXPECT_EQ(parts[1].body, "x");
}

TEST(Multipart, RefusesMalformedBodies) {
  const std::string disposition = "Content-Disposition: form-data; name=\"a\"\r\n\r\n";
  const std::vector<std::string> bodies = {
      "",
      "no boundary at all",
      "--b\r\n" + disposition + "value without the closing boundary",
      "--b\r\n" + disposition + "value\r\n--bb\r\n",
      "--bjunk\r\n" + disposition + "x\r\n--b--",
      "--b\r\n\r\nheaderless\r\n--b--",
      "--b\r\nContent-Type: text/plain\r\n\r\nno disposition\r\n--b--",
      "--b\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--b--",
      "--b\r\nContent-Disposition: form-data; filename=\"f\"\r\n\r\nno name\r\n--b--",
      "--b\r\nContent-Disposition: form-data; name=\"a\r\n\r\nunclosed quote\r\n--b--",
      "--b\r\nnot a header line\r\n\r\nx\r\n--b--",
      "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n  folded: header\r\n\r\nx\r\n--b--",
      "--b\r\nContent-Disposition: form-data; name=\"a\"",
  };
  for (const std::string& body : bodies) {
    EXPECT_EQ(code_of([&] { parse_multipart(body, "b"); }), ErrorCode::kBadRequest) << body;
  }
}

}  // namespace
}  // namespace df::api

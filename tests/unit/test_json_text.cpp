// JSON text in and out: client JSON is bounded in depth and range, written JSON survives any bytes.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/json_text.h"
#include "http/json_text.h"

namespace df {
namespace {

std::string refusal(const std::string& text) {
  try {
    http::parse_json_text(text, "request body");
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kBadRequest);
    return error.what();
  }
  ADD_FAILURE() << "accepted: " << text.substr(0, 80);
  return "";
}

TEST(JsonText, NestingIsBoundedWithoutOverflowingTheStack) {
  const int deep = 100000;
  EXPECT_NE(refusal(std::string(deep, '[') + std::string(deep, ']')).find("deeper than 256"),
            std::string::npos);
  std::string objects;
  for (int i = 0; i < deep; ++i) objects += "{\"a\":";
  EXPECT_NE(refusal(objects + "1" + std::string(deep, '}')).find("deeper"), std::string::npos);
  const int allowed = http::kMaxJsonDepth;
  EXPECT_NO_THROW(http::parse_json_text(std::string(allowed, '[') + std::string(allowed, ']'), "x"));
  refusal(std::string(allowed + 1, '[') + std::string(allowed + 1, ']'));
}

TEST(JsonText, NumbersBeyondADoubleAreRefused) {
  EXPECT_NE(refusal("{\"seed\": 1e400}").find("too large"), std::string::npos);
  refusal("[-1e400]");
  refusal("1" + std::string(400, '0'));
  EXPECT_EQ(http::parse_json_text("{\"a\": 1e300}", "x")["a"].get<double>(), 1e300);
  EXPECT_TRUE(http::parse_json_text_or_discarded("[1e400]").is_discarded());
  EXPECT_TRUE(http::parse_json_text_or_discarded("{").is_discarded());
}

TEST(JsonText, ParseErrorsQuotingInvalidUtf8CanBeWrittenAsJson) {
  const std::string message = refusal("\xb8\x1e");
  const std::string text = dump_json({{"message", message}});
  EXPECT_NO_THROW(nlohmann::json::parse(text));
}

TEST(JsonText, InvalidUtf8IsReplacedNotThrown) {
  const nlohmann::json value = {{"name", std::string("caf\xe9")}, {"ok", "caf\xc3\xa9"}};
  EXPECT_THROW(value.dump(), nlohmann::json::type_error);
  const nlohmann::json back = nlohmann::json::parse(dump_json(value));
  EXPECT_EQ(back["name"], "caf\xef\xbf\xbd");
  EXPECT_EQ(back["ok"], "caf\xc3\xa9");
  EXPECT_EQ(valid_utf8("a\xff" "b"), "a\xef\xbf\xbd" "b");
}

}  // namespace
}  // namespace df

// Unit tests for `dreamforge tui`'s options: the image protocol it picks and its flags.
#include <gtest/gtest.h>

#include <map>

#include "test_support.h"
#include "tui/tui_command.h"

namespace df::tui {
namespace {

std::function<const char*(const char*)> environment(std::map<std::string, std::string> values) {
  return [values = std::move(values)](const char* name) -> const char* {
    const auto found = values.find(name);
    return found == values.end() ? nullptr : found->second.c_str();
  };
}

TEST(TuiCommand, NamedProtocolsWinOverTheTerminal) {
  const auto kitty = environment({{"TERM", "xterm-kitty"}});
  EXPECT_EQ(image_protocol_from_option("none", kitty), ImageProtocol::kNone);
  EXPECT_EQ(image_protocol_from_option("blocks", kitty), ImageProtocol::kBlocks);
  EXPECT_EQ(image_protocol_from_option("sixel", kitty), ImageProtocol::kSixel);
  EXPECT_EQ(image_protocol_from_option("kitty", environment({})), ImageProtocol::kKitty);
}

TEST(TuiCommand, AutoAsksTheEnvironment) {
  EXPECT_EQ(image_protocol_from_option("auto", environment({{"TERM", "vt100"}})),
            ImageProtocol::kNone);
  EXPECT_EQ(image_protocol_from_option(
                "auto", environment({{"TERM", "xterm-kitty"}, {"DREAMFORGE_TUI_IMAGES", "none"}})),
            ImageProtocol::kNone);
}

TEST(TuiCommand, OtherNamesAreRefused) {
  EXPECT_EQ(test::error_code_of([] { image_protocol_from_option("png", environment({})); }),
            ErrorCode::kInvalidArgument);
}

TEST(TuiCommand, RegistersTheSubcommandWithItsFlags) {
  CLI::App app;
  register_tui_command(app);
  CLI::App* tui = app.get_subcommand("tui");
  ASSERT_NE(tui, nullptr);
  for (const char* flag : {"--zmq-req-addr", "--zmq-pub-addr", "--server", "--images"}) {
    EXPECT_NE(tui->get_option_no_throw(flag), nullptr) << flag;
  }
  EXPECT_EQ(tui->get_option("--zmq-req-addr")->get_envname(), "DREAMFORGE_ZMQ_REQ_ADDR");
  EXPECT_EQ(tui->get_option("--zmq-pub-addr")->get_envname(), "DREAMFORGE_ZMQ_PUB_ADDR");
  EXPECT_THROW(app.parse(std::string("tui --images png"), false), CLI::ParseError);
}

}  // namespace
}  // namespace df::tui

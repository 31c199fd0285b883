// `dreamforge tui`: options, the link they choose, and the client's run.
#include "tui/tui_command.h"

#include <cstdlib>
#include <memory>

#include "core/error.h"
#include "pixels/pixels_messages.h"
#include "tui/server_link.h"
#include "tui/tui_app.h"

namespace df::tui {

namespace {

constexpr int kServerTimeoutMs = 5000;  // each request to a --server

struct TuiOptions {
  std::string req_address = pixels::kDefaultReqAddress;
  std::string pub_address = pixels::kDefaultPubAddress;
  std::string server_url;
  std::string api_key;
  std::string images = "auto";
};

}  // namespace

ImageProtocol image_protocol_from_option(
    const std::string& option, const std::function<const char*(const char*)>& getenv_like) {
  if (option == "auto") return detect_image_protocol(getenv_like);
  for (const ImageProtocol protocol : {ImageProtocol::kNone, ImageProtocol::kBlocks,
                                       ImageProtocol::kSixel, ImageProtocol::kKitty}) {
    if (option == image_protocol_name(protocol)) return protocol;
  }
  throw Error(ErrorCode::kInvalidArgument,
              "--images must be auto, none, blocks, sixel or kitty, not '" + option + "'");
}

void register_tui_command(CLI::App& app) {
  auto options = std::make_shared<TuiOptions>();
  CLI::App* command = app.add_subcommand(
      "tui", "Full-screen terminal client: prompts, live queue, gallery, model comparison");
  command->add_option("--zmq-req-addr", options->req_address,
                      "ZeroMQ address of the server's requests (REQ-REP)")
      ->envname("DREAMFORGE_ZMQ_REQ_ADDR")->capture_default_str();
  command->add_option("--zmq-pub-addr", options->pub_address,
                      "ZeroMQ address of the server's updates (PUB-SUB)")
      ->envname("DREAMFORGE_ZMQ_PUB_ADDR")->capture_default_str();
  command->add_option("--server", options->server_url,
                      "Talk to the /v1 API at this URL (http://host:port) instead of ZeroMQ");
  command->add_option("--api-key", options->api_key, "API key of a --server that requires one")
      ->envname("DREAMFORGE_API_KEY");
  command->add_option("--images", options->images,
                      "How to show images: auto, none, blocks, sixel or kitty (auto: "
                      "DREAMFORGE_TUI_IMAGES, else what the terminal can)")
      ->check(CLI::IsMember({"auto", "none", "blocks", "sixel", "kitty"}))
      ->capture_default_str();
  command->callback([options] {
    const ImageProtocol protocol = image_protocol_from_option(options->images, std::getenv);
    run_tui(options->server_url.empty()
                ? open_zmq_link(options->req_address, options->pub_address)
                : open_http_link(options->server_url, kServerTimeoutMs, options->api_key),
            protocol);
  });
}

}  // namespace df::tui

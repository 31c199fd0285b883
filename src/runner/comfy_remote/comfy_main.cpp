// dreamforge-comfy-runner: the runner protocol on stdin/stdout, each run forwarded to one ComfyUI server.
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "runner/comfy_remote/comfy_session.h"
#include "runner/runner_io.h"

int main(int argc, char** argv) {
  CLI::App app{"dreamforge-comfy-runner: runs workflow graphs on a ComfyUI server (protocol in "
               "docs/runner-protocol.md)"};
  df::runner::ComfyRunnerOptions options;
  app.add_option("--url", options.url, "The ComfyUI server, http://host:port")->required();
  app.add_option("--auth-header", options.auth_header,
                 "\"Name: value\" sent with every request (from the environment, so that the "
                 "secret does not show in process lists)")
      ->envname("DREAMFORGE_COMFY_AUTH_HEADER");
  app.add_option("--input-dir", options.input_dir,
                 "Folder whose files the graphs name (uploaded to the server before a run)")
      ->default_val("input");
  app.add_option("--name", options.name, "The backend's name in messages");
  app.add_option("--timeout-ms", options.timeout_ms, "Bound on each request to the server")
      ->default_val(30000)
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  df::runner::EventWriter events(std::cout);
  df::runner::RequestReader requests(std::cin, events);
  const int status = [&] {
    df::runner::ComfySession session(options, events, requests);
    return session.serve();
  }();
  // The request reader may still block on stdin (the worker closes it after "bye"): end at once.
  std::cout.flush();
  std::_Exit(status);
}

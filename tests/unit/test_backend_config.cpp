// Unit tests for backends.yaml parsing: the fields, their defaults and each kind of error's line.
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <gtest/gtest.h>

#include "backends/backend_config.h"
#include "core/error.h"

namespace df::backends {
namespace {

namespace fs = std::filesystem;

// The error parse_backend_config throws for `yaml` (fails the test when it parses).
Error parse_error(const std::string& yaml) {
  try {
    parse_backend_config(yaml, "backends.yaml");
  } catch (const Error& error) {
    return error;
  }
  ADD_FAILURE() << "expected an error for:\n" << yaml;
  return Error(ErrorCode::kInternal, "parsed");
}

TEST(BackendConfig, ReadsRunningAndStartedBackends) {
  const auto config = parse_backend_config(R"(backends:
  - name: studio
    url: http://10.0.0.5:8188/
    auth_header: "Authorization: Bearer xyz"
    max_instances: 2
  - name: local
    command: ["python", "main.py", "--port", "{port}", "--cpu"]
    port: 8190
    device: cuda:1
    memory_need_mb: 6000
    idle_timeout_s: 60
    start_timeout_s: 30
)",
                                           "backends.yaml");
  ASSERT_EQ(config.backends.size(), 2u);
  const BackendSpec& studio = config.backends[0];
  EXPECT_EQ(studio.name, "studio");
  EXPECT_EQ(studio.url, "http://10.0.0.5:8188");
  EXPECT_EQ(studio.base_url(), "http://10.0.0.5:8188");
  EXPECT_EQ(studio.auth_header, "Authorization: Bearer xyz");
  EXPECT_EQ(studio.max_instances, 2);
  EXPECT_FALSE(studio.started_by_us());
  EXPECT_EQ(studio.runner_id(), "backend:studio");

  const BackendSpec& local = config.backends[1];
  EXPECT_TRUE(local.started_by_us());
  EXPECT_EQ(local.command,
            (std::vector<std::string>{"python", "main.py", "--port", "{port}", "--cpu"}));
  EXPECT_EQ(local.port, 8190);
  EXPECT_EQ(local.base_url(), "http://127.0.0.1:8190");
  EXPECT_EQ(local.device, "cuda:1");
  EXPECT_EQ(local.memory_need_bytes, int64_t{6000} << 20);
  EXPECT_EQ(local.idle_timeout_ms, 60000);
  EXPECT_EQ(local.start_timeout_ms, 30000);
  EXPECT_EQ(local.max_instances, 1);
}

TEST(BackendConfig, OptionalFieldsHaveDefaults) {
  const auto config = parse_backend_config(
      "backends:\n  - name: local\n    command: [comfy]\n    port: 9000\n", "backends.yaml");
  ASSERT_EQ(config.backends.size(), 1u);
  const BackendSpec& local = config.backends[0];
  EXPECT_EQ(local.device, "cpu");
  EXPECT_EQ(local.memory_need_bytes, 0);
  EXPECT_EQ(local.idle_timeout_ms, 300000);
  EXPECT_EQ(local.start_timeout_ms, 120000);
  EXPECT_EQ(local.max_instances, 1);
  EXPECT_EQ(local.auth_header, "");
}

TEST(BackendConfig, EmptyTextsAreEmptyConfigs) {
  EXPECT_TRUE(parse_backend_config("", "backends.yaml").backends.empty());
  EXPECT_TRUE(parse_backend_config("backends:\n", "backends.yaml").backends.empty());
  EXPECT_TRUE(parse_backend_config("backends: []\n", "backends.yaml").backends.empty());
}

struct BadCase {
  std::string yaml;
  int line;
  std::string says;  // a part of the message
};

TEST(BackendConfig, ErrorsNameTheFileLineAndField) {
  const std::vector<BadCase> cases = {
      {"backends:\n  - name: a\n    url: http://h:1\n    colour: red\n", 4, "unknown field 'colour'"},
      {"servers: []\n", 1, "unknown field 'servers'"},
      {"backends:\n  - name: a\n    url: http://h:1\n  - name: a\n    url: http://h:2\n", 4,
       "'a' appears twice"},
      {"backends:\n  - url: http://h:1\n", 2, "no 'name'"},
      {"backends:\n  - name: 'a b'\n    url: http://h:1\n", 2, "name 'a b' is not valid"},
      {"backends:\n  - name: a\n", 2, "exactly one of 'url' or 'command'"},
      {"backends:\n  - name: a\n    url: http://h:1\n    command: [x]\n    port: 1\n", 2,
       "exactly one of 'url' or 'command'"},
      {"backends:\n  - name: a\n    url: https://h:1\n", 3, "url"},
      {"backends:\n  - name: a\n    url: http://h:1/path\n", 3, "url"},
      {"backends:\n  - name: a\n    command: [x]\n", 2, "no 'port'"},
      {"backends:\n  - name: a\n    command: []\n    port: 1\n", 3, "non-empty list"},
      {"backends:\n  - name: a\n    command: x\n    port: 1\n", 3, "non-empty list"},
      {"backends:\n  - name: a\n    command: [x, [y]]\n    port: 1\n", 3, "must be a string"},
      {"backends:\n  - name: a\n    command: [x]\n    port: 70000\n", 4, "port must be between"},
      {"backends:\n  - name: a\n    command: [x]\n    port: eight\n", 4,
       "port must be a whole number"},
      {"backends:\n  - name: a\n    command: [x]\n    port: 1\n    device: gpu\n", 5,
       "device 'gpu'"},
      {"backends:\n  - name: a\n    url: http://h:1\n    port: 1\n", 4,
       "'port' applies only to a backend with 'command'"},
      {"backends:\n  - name: a\n    url: http://h:1\n    max_instances: 0\n", 4,
       "max_instances must be between"},
      {"backends:\n  - name: a\n    url: http://h:1\n    auth_header: Bearer\n", 4,
       "auth header"},
      {"backends:\n  - name: a\n    url: [http://h:1]\n", 3, "url must be a single value"},
      {"backends: {name: a}\n", 1, "backends must be a list"},
      {"backends:\n  - name: a\n    url: http://h:1\n  - [x\n", 5, "YAML syntax error"},
  };
  for (const auto& bad : cases) {
    const Error error = parse_error(bad.yaml);
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument) << bad.yaml;
    EXPECT_EQ(error.details().value("line", 0), bad.line) << bad.yaml << error.what();
    EXPECT_EQ(error.details().value("file", ""), "backends.yaml");
    const std::string message = error.what();
    EXPECT_TRUE(message.starts_with("backends.yaml:" + std::to_string(bad.line) + ": "))
        << message;
    EXPECT_NE(message.find(bad.says), std::string::npos) << message;
  }
}

TEST(BackendConfig, MissingFileIsEmptyAndAFileIsRead) {
  const fs::path dir = fs::temp_directory_path() / ("df_backend_config_" + std::to_string(getpid()));
  fs::create_directories(dir / "config");
  const fs::path path = backends_config_path(dir.string());
  EXPECT_EQ(path, dir / "config" / "backends.yaml");
  EXPECT_TRUE(load_backend_config(path).backends.empty());

  std::ofstream(path) << "backends:\n  - name: a\n    url: http://h:1\n    extra: 1\n";
  try {
    load_backend_config(path);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& error) {
    EXPECT_TRUE(std::string(error.what()).starts_with(path.string() + ":4: ")) << error.what();
  }
  std::ofstream(path) << "backends:\n  - name: a\n    url: http://h:1\n";
  EXPECT_EQ(load_backend_config(path).backends.at(0).url, "http://h:1");
  fs::remove_all(dir);
}

TEST(BackendConfig, ExampleFileParses) {
  const fs::path example = fs::path(DF_TEST_DATA_DIR) / ".." / ".." / ".." / "docs" /
                           "backends.example.yaml";
  const auto config = load_backend_config(example);
  ASSERT_EQ(config.backends.size(), 2u);
  EXPECT_FALSE(config.backends[0].started_by_us());
  EXPECT_TRUE(config.backends[1].started_by_us());
}

}  // namespace
}  // namespace df::backends

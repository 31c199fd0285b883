// Unit tests for the DGX-Pixels messages: bytes as Python's msgpack writes them, loose reading.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <typeinfo>
#include <vector>

#include "core/error.h"
#include "hex_bytes.h"
#include "pixels/msgpack_codec.h"
#include "pixels/pixels_messages.h"
#include "test_support.h"

namespace df::pixels {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;
using test::from_hex;
using test::to_hex;

// Each fixture is msgpack.packb(<the dict in the comment>, use_bin_type=True).hex() in Python,
// the dict written in the order the header lists the fields.

TEST(PixelsMessages, RepliesHaveTheBytesPythonWrites) {
  // {"type": "job_accepted", "job_id": "j1", "estimated_time_s": 3.5}
  EXPECT_EQ(to_hex(encode_msgpack(job_accepted("j1", 3.5))),
            "83a474797065ac6a6f625f6163636570746564a66a6f625f6964a26a31b0657374696d617465645f7469"
            "6d655f73cb400c000000000000");
  // {"type": "job_cancelled", "job_id": "j1"}
  EXPECT_EQ(to_hex(encode_msgpack(job_cancelled("j1"))),
            "82a474797065ad6a6f625f63616e63656c6c6564a66a6f625f6964a26a31");
  // {"type": "job_error", "job_id": "j1", "error": "no such job"}
  EXPECT_EQ(to_hex(encode_msgpack(job_error("j1", "no such job"))),
            "83a474797065a96a6f625f6572726f72a66a6f625f6964a26a31a56572726f72ab6e6f2073756368206a"
            "6f62");
  // {"type": "pong"}
  EXPECT_EQ(to_hex(encode_msgpack(pong())), "81a474797065a4706f6e67");
  // {"type": "error", "message": "unknown request type 'foo'"}
  EXPECT_EQ(to_hex(encode_msgpack(error_reply("unknown request type 'foo'"))),
            "82a474797065a56572726f72a76d657373616765ba756e6b6e6f776e207265717565737420747970652027"
            "666f6f27");
}

TEST(PixelsMessages, ModelListHasTheBytesPythonWrites) {
  // {"type": "model_list", "models": [{"name": "sdxl", "path": "/m/sd_xl_base_1.0.safetensors",
  //  "model_type": "checkpoint", "size_mb": 6776}, {"name": "pixel", "path":
  //  "/m/loras/pixel.safetensors", "model_type": "lora", "size_mb": 0}]}
  const std::vector<ModelEntry> models = {
      {"sdxl", "/m/sd_xl_base_1.0.safetensors", "checkpoint", 6776},
      {"pixel", "/m/loras/pixel.safetensors", "lora", 0}};
  EXPECT_EQ(to_hex(encode_msgpack(model_list(models))),
            "82a474797065aa6d6f64656c5f6c697374a66d6f64656c739284a46e616d65a47364786ca470617468bd"
            "2f6d2f73645f786c5f626173655f312e302e7361666574656e736f7273aa6d6f64656c5f74797065aa63"
            "6865636b706f696e74a773697a655f6d62cd1a7884a46e616d65a5706978656ca470617468ba2f6d2f6c"
            "6f7261732f706978656c2e7361666574656e736f7273aa6d6f64656c5f74797065a46c6f7261a773697a"
            "655f6d6200");
  EXPECT_EQ(to_hex(encode_msgpack(model_list({}))),
            "82a474797065aa6d6f64656c5f6c697374a66d6f64656c7390");  // "models": []
}

TEST(PixelsMessages, StatusInfoHasTheBytesPythonWrites) {
  // {"type": "status_info", "version": "0.9.0", "queue_size": 2, "active_jobs": 1,
  //  "uptime_s": 3600}
  EXPECT_EQ(to_hex(encode_msgpack(status_info({"0.9.0", 2, 1, 3600}))),
            "85a474797065ab7374617475735f696e666fa776657273696f6ea5302e392e30aa71756575655f73697a"
            "6502ab6163746976655f6a6f627301a8757074696d655f73cd0e10");
}

TEST(PixelsMessages, UpdatesHaveTheBytesPythonWrites) {
  // {"type": "job_started", "job_id": "j1", "timestamp": 1765000000}
  EXPECT_EQ(to_hex(encode_msgpack(job_started("j1", 1765000000))),
            "83a474797065ab6a6f625f73746172746564a66a6f625f6964a26a31a974696d657374616d70ce6933c3"
            "40");
  // {"type": "progress", "job_id": "j1", "stage": "sampling", "step": 7, "total_steps": 20,
  //  "percent": 41.25, "eta_s": 2.0}
  EXPECT_EQ(to_hex(encode_msgpack(progress({"j1", "sampling", 7, 20, 41.25, 2.0}))),
            "87a474797065a870726f6772657373a66a6f625f6964a26a31a57374616765a873616d706c696e67a473"
            "74657007ab746f74616c5f737465707314a770657263656e74cb4044a00000000000a56574615f73cb40"
            "00000000000000");
  // {"type": "preview", "job_id": "j1", "image_path": "/tmp/p/j1-7.png", "step": 7}
  EXPECT_EQ(to_hex(encode_msgpack(preview("j1", "/tmp/p/j1-7.png", 7))),
            "84a474797065a770726576696577a66a6f625f6964a26a31aa696d6167655f70617468af2f746d702f70"
            "2f6a312d372e706e67a47374657007");
  // {"type": "job_finished", "job_id": "j1", "success": True, "duration_s": 12.25}
  EXPECT_EQ(to_hex(encode_msgpack(job_finished("j1", true, 12.25))),
            "84a474797065ac6a6f625f66696e6973686564a66a6f625f6964a26a31a773756363657373c3aa647572"
            "6174696f6e5f73cb4028800000000000");
  // {"type": "job_complete", "job_id": "j1", "image_path": "/a/1.png", "duration_s": 12.25,
  //  "image_paths": ["/a/1.png", "/a/2.png"]}
  EXPECT_EQ(to_hex(encode_msgpack(job_complete("j1", "/a/1.png", 12.25, {"/a/1.png", "/a/2.png"}))),
            "85a474797065ac6a6f625f636f6d706c657465a66a6f625f6964a26a31aa696d6167655f70617468a82f"
            "612f312e706e67aa6475726174696f6e5f73cb4028800000000000ab696d6167655f706174687392a82f"
            "612f312e706e67a82f612f322e706e67");
}

// {"type": "generate", "id": "c-1", "prompt": "a knight", "model": "sdxl", "size": [1024, 1024],
//  "steps": 30, "cfg_scale": 7.5, "lora": "pixel_art", "batch_size": 2, "animation_frames": 8,
//  "tileset_grid": [4, 2], "seed": 42, "negative_prompt": "blurry"}
constexpr std::string_view kFullGenerateHex =
    "8da474797065a867656e6572617465a26964a3632d31a670726f6d7074a861206b6e69676874a56d6f64656ca473"
    "64786ca473697a6592cd0400cd0400a573746570731ea96366675f7363616c65cb401e000000000000a46c6f7261"
    "a9706978656c5f617274aa62617463685f73697a6502b0616e696d6174696f6e5f6672616d657308ac74696c6573"
    "65745f67726964920402a4736565642aaf6e656761746976655f70726f6d7074a6626c75727279";

GenerateRequest full_generate() {
  GenerateRequest request;
  request.id = "c-1";
  request.prompt = "a knight";
  request.model = "sdxl";
  request.width = 1024;
  request.height = 1024;
  request.steps = 30;
  request.cfg_scale = 7.5;
  request.lora = "pixel_art";
  request.batch_size = 2;
  request.animation_frames = 8;
  request.tileset_grid = std::pair{4, 2};
  request.seed = 42;
  request.negative_prompt = "blurry";
  return request;
}

GenerateRequest parse_generate_hex(std::string_view hex) {
  return std::get<GenerateRequest>(parse_request(decode_msgpack(from_hex(hex))));
}

std::string request_error(const json& message) {
  const Error error = test::error_of([&] { parse_request(message); });
  EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
  return error.what();
}

TEST(PixelsMessages, RequestMessagesHaveTheBytesPythonWrites) {
  EXPECT_EQ(to_hex(encode_msgpack(request_message(full_generate()))), kFullGenerateHex);
  // {"type": "generate", "id": "c-1", "prompt": "a knight", "model": "sdxl", "size": [64, 32],
  //  "steps": 8, "cfg_scale": 7.0, "batch_size": 1}: unset optional fields are left out.
  GenerateRequest minimal;
  minimal.id = "c-1";
  minimal.prompt = "a knight";
  minimal.model = "sdxl";
  minimal.width = 64;
  minimal.height = 32;
  minimal.steps = 8;
  minimal.cfg_scale = 7;
  EXPECT_EQ(to_hex(encode_msgpack(request_message(minimal))),
            "88a474797065a867656e6572617465a26964a3632d31a670726f6d7074a861206b6e69676874a56d6f64"
            "656ca47364786ca473697a65924020a5737465707308a96366675f7363616c65cb401c000000000000"
            "aa62617463685f73697a6501");
  // {"type": "cancel", "job_id": "c-1"}
  EXPECT_EQ(to_hex(encode_msgpack(request_message(CancelRequest{"c-1"}))),
            "82a474797065a663616e63656ca66a6f625f6964a3632d31");
  EXPECT_EQ(request_message(ListModelsRequest{}).dump(), R"({"type":"list_models"})");
  EXPECT_EQ(request_message(StatusRequest{}).dump(), R"({"type":"status"})");
  EXPECT_EQ(request_message(PingRequest{}).dump(), R"({"type":"ping"})");
}

TEST(PixelsMessages, GenerateReadsEveryField) {
  const GenerateRequest request = parse_generate_hex(kFullGenerateHex);
  EXPECT_EQ(request.id, "c-1");
  EXPECT_EQ(request.prompt, "a knight");
  EXPECT_EQ(request.model, "sdxl");
  EXPECT_EQ(request.width, 1024);
  EXPECT_EQ(request.height, 1024);
  EXPECT_EQ(request.steps, 30);
  EXPECT_DOUBLE_EQ(request.cfg_scale, 7.5);
  EXPECT_EQ(request.lora, "pixel_art");
  EXPECT_EQ(request.batch_size, 2);
  EXPECT_EQ(request.animation_frames, 8);
  EXPECT_EQ(request.tileset_grid, (std::pair{4, 2}));
  EXPECT_EQ(request.seed, 42u);
  EXPECT_EQ(request.negative_prompt, "blurry");
}

TEST(PixelsMessages, GenerateTakesTypeLastFloat32NilLoraAndUnknownKeys) {
  // msgpack.packb({"id": "c-2", "prompt": "tree", "model": "sd_xl_base_1.0", "size": [512.0, 768],
  //  "steps": 20, "cfg_scale": 6.5, "lora": None, "future": {"x": [1, 2]}, "type": "generate"},
  //  use_single_float=True)
  const GenerateRequest request = parse_generate_hex(
      "89a26964a3632d32a670726f6d7074a474726565a56d6f64656cae73645f786c5f626173655f312e30a47369"
      "7a6592ca44000000cd0300a5737465707314a96366675f7363616c65ca40d00000a46c6f7261c0a666757475"
      "726581a178920102a474797065a867656e6572617465");
  EXPECT_EQ(request.id, "c-2");
  EXPECT_EQ(request.model, "sd_xl_base_1.0");
  EXPECT_EQ(request.width, 512);
  EXPECT_EQ(request.height, 768);
  EXPECT_EQ(request.steps, 20);
  EXPECT_NEAR(request.cfg_scale, 6.5, 1e-6);
  EXPECT_FALSE(request.lora.has_value());
  EXPECT_EQ(request.batch_size, 1);
  EXPECT_FALSE(request.animation_frames.has_value());
  EXPECT_FALSE(request.tileset_grid.has_value());
  EXPECT_FALSE(request.seed.has_value());
}

TEST(PixelsMessages, GenerateTakesAnIntegerCfgScale) {
  // {"type": "generate", "id": "c-3", "prompt": "p", "model": "m", "size": [64, 64], "steps": 4,
  //  "cfg_scale": 7}
  const GenerateRequest request = parse_generate_hex(
      "87a474797065a867656e6572617465a26964a3632d33a670726f6d7074a170a56d6f64656ca16da473697a65"
      "924040a5737465707304a96366675f7363616c6507");
  EXPECT_DOUBLE_EQ(request.cfg_scale, 7.0);
  EXPECT_EQ(request.width, 64);
}

TEST(PixelsMessages, RequestsSurviveTheWire) {
  const Request parsed =
      parse_request(decode_msgpack(encode_msgpack(request_message(full_generate()))));
  EXPECT_EQ(request_message(parsed), request_message(full_generate()));
  GenerateRequest big_seed = full_generate();
  big_seed.seed = UINT64_MAX;
  EXPECT_EQ(std::get<GenerateRequest>(parse_request(json::parse(request_message(big_seed).dump())))
                .seed,
            UINT64_MAX);
  // {"job_id": "c-1", "type": "cancel"}
  const Request cancel =
      parse_request(decode_msgpack(from_hex("82a66a6f625f6964a3632d31a474797065a663616e63656c")));
  EXPECT_EQ(std::get<CancelRequest>(cancel).job_id, "c-1");
  EXPECT_TRUE(std::holds_alternative<ListModelsRequest>(parse_request({{"type", "list_models"}})));
  EXPECT_TRUE(std::holds_alternative<StatusRequest>(parse_request({{"type", "status"}})));
  EXPECT_TRUE(std::holds_alternative<PingRequest>(parse_request({{"type", "ping"}, {"x", 1}})));
}

json generate_json() { return json::parse(request_message(full_generate()).dump()); }

json generate_with(const char* key, const json& value) {
  json message = generate_json();
  message[key] = value;
  return message;
}

json generate_without(const char* key) {
  json message = generate_json();
  message.erase(key);
  return message;
}

TEST(PixelsMessages, RequestsWithoutAKnownTypeAreRefused) {
  EXPECT_EQ(request_error(json::array({"generate"})), "a request must be a map with a 'type'");
  EXPECT_EQ(request_error({{"id", "x"}}), "a request must be a map with a 'type'");
  EXPECT_EQ(request_error({{"type", 3}}), "a request must be a map with a 'type'");
  EXPECT_EQ(request_error({{"type", "foo"}}), "unknown request type 'foo'");
}

TEST(PixelsMessages, MissingGenerateFieldsAreNamed) {
  for (const char* key : {"id", "prompt", "model", "size", "steps", "cfg_scale"}) {
    EXPECT_EQ(request_error(generate_without(key)),
              std::string("generate: ") + key + " is missing");
  }
  EXPECT_EQ(request_error({{"type", "cancel"}}), "cancel: job_id is missing");
}

TEST(PixelsMessages, MistypedGenerateFieldsAreNamed) {
  EXPECT_EQ(request_error(generate_with("size", {64})), "generate: size must be [width, height]");
  EXPECT_EQ(request_error(generate_with("size", {64, 0})),
            "generate: size must be [width, height]");
  EXPECT_EQ(request_error(generate_with("size", {64, 64.5})),
            "generate: size must be [width, height]");
  EXPECT_EQ(request_error(generate_with("size", "64x64")),
            "generate: size must be [width, height]");
  EXPECT_EQ(request_error(generate_with("tileset_grid", {4, 2, 1})),
            "generate: tileset_grid must be [cols, rows]");
  EXPECT_EQ(request_error(generate_with("steps", 0)), "generate: steps must be a positive integer");
  EXPECT_EQ(request_error(generate_with("steps", 20.5)),
            "generate: steps must be a positive integer");
  EXPECT_EQ(request_error(generate_with("steps", int64_t{1} << 40)),
            "generate: steps must be a positive integer");
  EXPECT_EQ(request_error(generate_with("batch_size", 0)),
            "generate: batch_size must be a positive integer");
  EXPECT_EQ(request_error(generate_with("cfg_scale", "7")), "generate: cfg_scale must be a number");
  EXPECT_EQ(request_error(generate_with("cfg_scale", true)),
            "generate: cfg_scale must be a number");
  EXPECT_EQ(request_error(generate_with("id", "")), "generate: id must be a non-empty string");
  EXPECT_EQ(request_error(generate_with("prompt", 5)), "generate: prompt must be a string");
  EXPECT_EQ(request_error(generate_with("lora", false)), "generate: lora must be a string");
  EXPECT_EQ(request_error(generate_with("seed", -1)),
            "generate: seed must be a non-negative integer");
  EXPECT_EQ(request_error({{"type", "cancel"}, {"job_id", ""}}),
            "cancel: job_id must be a non-empty string");
}

TEST(PixelsMessages, IntegerValuedFloatsCountAsIntegers) {
  json message = generate_json();
  message["steps"] = 12.0;
  message["batch_size"] = 3.0;
  const auto request = std::get<GenerateRequest>(parse_request(message));
  EXPECT_EQ(request.steps, 12);
  EXPECT_EQ(request.batch_size, 3);
}

TEST(PixelsMessages, FieldReadersTakeAnyNumberKind) {
  const json update = decode_msgpack(encode_msgpack(progress({"j1", "sampling", 7, 20, 41.25, 2})));
  EXPECT_EQ(message_type(update), "progress");
  EXPECT_EQ(string_field(update, "stage"), "sampling");
  EXPECT_EQ(integer_field(update, "step"), 7);
  EXPECT_DOUBLE_EQ(number_field(update, "percent"), 41.25);
  EXPECT_DOUBLE_EQ(number_field(update, "step"), 7.0);
  EXPECT_EQ(integer_field(update, "eta_s"), 2) << "an integer-valued float";
  const json finished = decode_msgpack(encode_msgpack(job_finished("j1", true, 1.5)));
  EXPECT_TRUE(bool_field(finished, "success"));
}

TEST(PixelsMessages, FieldReadersNameWhatIsWrong) {
  const json update = json::parse(progress({"j1", "sampling", 7, 20, 41.25, 2.5}).dump());
  const auto reader_error = [](auto&& read) {
    const Error error = test::error_of(read);
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
    return std::string(error.what());
  };
  EXPECT_EQ(reader_error([&] { string_field(update, "image_path"); }),
            "progress: image_path is missing");
  EXPECT_EQ(reader_error([&] { string_field(update, "step"); }), "progress: step must be a string");
  EXPECT_EQ(reader_error([&] { integer_field(update, "eta_s"); }),
            "progress: eta_s must be an integer");
  EXPECT_EQ(reader_error([&] { number_field(update, "stage"); }),
            "progress: stage must be a number");
  EXPECT_EQ(reader_error([&] { bool_field(update, "step"); }),
            "progress: step must be true or false");
  EXPECT_EQ(reader_error([&] { string_field(json::array(), "job_id"); }),
            "message: job_id is missing");
  EXPECT_EQ(message_type(json::array()), "");
  EXPECT_EQ(message_type({{"job_id", "j1"}}), "");
}

// Decoding and reading as requests: a df::Error or a value, never a crash or another exception.
void expect_parses_or_refuses(const std::string& bytes) {
  try {
    const json message = decode_msgpack(bytes);
    message.dump(-1, ' ', false, json::error_handler_t::strict);  // strings are valid UTF-8
    parse_request(message);
  } catch (const Error&) {
  } catch (const std::exception& e) {
    ADD_FAILURE() << "a " << typeid(e).name() << " (" << e.what() << ") for " << to_hex(bytes);
  }
}

TEST(PixelsMessages, RandomBytesParseOrAreRefused) {
  std::mt19937 random(2026);
  for (int i = 0; i < 3000; ++i) {
    std::string bytes(std::uniform_int_distribution<int>(0, 64)(random), '\0');
    for (char& byte : bytes) byte = static_cast<char>(random() & 0xff);
    expect_parses_or_refuses(bytes);
  }
}

TEST(PixelsMessages, MutatedFramesParseOrAreRefused) {
  const std::vector<std::string> frames = {
      encode_msgpack(request_message(full_generate())),
      encode_msgpack(request_message(CancelRequest{"c-1"})),
      encode_msgpack(request_message(PingRequest{})),
      encode_msgpack(progress({"j1", "sampling", 7, 20, 41.25, 2.0})),
  };
  std::mt19937 random(18);
  for (int i = 0; i < 3000; ++i) {
    std::string bytes = frames[i % frames.size()];
    const int edits = std::uniform_int_distribution<int>(1, 4)(random);
    for (int e = 0; e < edits && !bytes.empty(); ++e) {
      const size_t at = random() % bytes.size();
      switch (random() % 4) {
        case 0: bytes[at] = static_cast<char>(random() & 0xff); break;  // overwrite
        case 1: bytes.erase(at, 1); break;
        case 2: bytes.insert(at, 1, static_cast<char>(random() & 0xff)); break;
        default: bytes.resize(at); break;  // truncate
      }
    }
    expect_parses_or_refuses(bytes);
  }
}

}  // namespace
}  // namespace df::pixels

// Unit tests for the MessagePack codec: bytes as Python's msgpack writes them, malformed frames.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "core/error.h"
#include "hex_bytes.h"
#include "pixels/msgpack_codec.h"

namespace df::pixels {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

using test::from_hex;
using test::to_hex;

// The message of the Error decoding `bytes` throws; fails the test when none is thrown.
std::string decode_error(std::string_view bytes) {
  try {
    decode_msgpack(bytes);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error for " << to_hex(bytes.substr(0, 64));
  return "";
}

// Python: msgpack.packb([0, 127, 128, 255, 256, 65535, 65536, 2**32-1, 2**32, 2**64-1, -1, -32,
// -33, -128, -129, -32768, -32769, -2**31, -2**31-1, -2**63], use_bin_type=True).hex()
constexpr std::string_view kIntegersHex =
    "dc0014007fcc80ccffcd0100cdffffce00010000ceffffffffcf0000000100000000cfffffffffffffffffffe0d0"
    "dfd080d1ff7fd18000d2ffff7fffd280000000d3ffffffff7fffffffd38000000000000000";

ordered_json integers_in_every_width() {
  return ordered_json::array({0, 127, 128, 255, 256, 65535, 65536, 4294967295LL, 4294967296LL,
                              UINT64_MAX, -1, -32, -33, -128, -129, -32768, -32769, INT32_MIN,
                              int64_t{INT32_MIN} - 1, INT64_MIN});
}

TEST(MsgpackCodec, IntegersTakeTheirShortestFormAsPythonWritesThem) {
  EXPECT_EQ(to_hex(encode_msgpack(integers_in_every_width())), kIntegersHex);
}

TEST(MsgpackCodec, IntegersOfEveryWidthDecodeToTheirValues) {
  const json decoded = decode_msgpack(from_hex(kIntegersHex));
  const ordered_json expected = integers_in_every_width();
  ASSERT_EQ(decoded.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    if (expected[i].is_number_unsigned()) {
      EXPECT_EQ(decoded[i].get<uint64_t>(), expected[i].get<uint64_t>()) << i;
    } else {
      EXPECT_EQ(decoded[i].get<int64_t>(), expected[i].get<int64_t>()) << i;
    }
  }
}

TEST(MsgpackCodec, ScalarsAsPythonWritesThem) {
  // msgpack.packb([None, True, False, 1.5, -0.1, 0.0, "", b"\x01\x02"], use_bin_type=True)
  const ordered_json value = {nullptr, true, false, 1.5, -0.1, 0.0, "",
                              ordered_json::binary({1, 2})};
  EXPECT_EQ(to_hex(encode_msgpack(value)),
            "98c0c3c2cb3ff8000000000000cbbfb999999999999acb0000000000000000a0c4020102");
}

TEST(MsgpackCodec, MapsKeepTheObjectsKeyOrder) {
  // msgpack.packb({"type": "job_accepted", "job_id": "abc", "estimated_time_s": 12.5})
  ordered_json message = ordered_json::object();
  message["type"] = "job_accepted";
  message["job_id"] = "abc";
  message["estimated_time_s"] = 12.5;
  EXPECT_EQ(to_hex(encode_msgpack(message)),
            "83a474797065ac6a6f625f6163636570746564a66a6f625f6964a3616263b0657374696d617465645f74"
            "696d655f73cb4029000000000000");
  // msgpack.packb({"b": [1, {"c": []}], "a": {}})
  ordered_json nested = ordered_json::object();
  nested["b"] = ordered_json::array({1, {{"c", ordered_json::array()}}});
  nested["a"] = ordered_json::object();
  EXPECT_EQ(to_hex(encode_msgpack(nested)), "82a162920181a16390a16180");
}

TEST(MsgpackCodec, LengthsPickTheShortestHeader) {
  // The first bytes of msgpack.packb for strings, bins, arrays and maps of growing size.
  const auto head = [](const ordered_json& value, size_t bytes) {
    return to_hex(encode_msgpack(value).substr(0, bytes));
  };
  EXPECT_EQ(head(std::string(31, 'a'), 2), "bf61");
  EXPECT_EQ(head(std::string(32, 'a'), 3), "d92061");
  EXPECT_EQ(head(std::string(256, 'a'), 4), "da010061");
  EXPECT_EQ(head(std::string(65536, 'a'), 6), "db0001000061");
  EXPECT_EQ(head(ordered_json::binary(std::vector<uint8_t>(256, 'x')), 4), "c5010078");
  EXPECT_EQ(head(ordered_json::binary(std::vector<uint8_t>(65536, 'x')), 6), "c60001000078");
  ordered_json sixteen_elements = ordered_json::array();
  ordered_json sixteen_pairs = ordered_json::object();
  for (int i = 0; i < 16; ++i) {
    sixteen_elements.push_back(i);
    sixteen_pairs[(i < 10 ? "k0" : "k") + std::to_string(i)] = i;
  }
  EXPECT_EQ(head(sixteen_elements, 5), "dc00100001");
  EXPECT_EQ(head(sixteen_pairs, 10), "de0010a36b303000a36b");
  EXPECT_EQ(to_hex(encode_msgpack("é")), "a2c3a9");
}

TEST(MsgpackCodec, ValuesSurviveARoundTrip) {
  const ordered_json value = {{"type", "progress"},
                              {"nested", {{"list", {1, -2, 3.25, "x", nullptr, true}}}},
                              {"big", UINT64_MAX},
                              {"small", INT64_MIN},
                              {"text", std::string(70000, 'z')}};
  const json decoded = decode_msgpack(encode_msgpack(value));
  EXPECT_EQ(decoded, json::parse(value.dump()));
  EXPECT_EQ(decoded["big"].get<uint64_t>(), UINT64_MAX);
}

TEST(MsgpackCodec, BinaryValuesDecodeAsBinary) {
  const json decoded = decode_msgpack(encode_msgpack(ordered_json::binary({0, 255, 7})));
  ASSERT_TRUE(decoded.is_binary());
  EXPECT_EQ(decoded.get_binary(), (std::vector<uint8_t>{0, 255, 7}));
  const json ext = decode_msgpack(from_hex("d40509"));  // fixext 1, type 5, data 09
  ASSERT_TRUE(ext.is_binary());
  EXPECT_EQ(ext.get_binary(), (std::vector<uint8_t>{9}));
}

TEST(MsgpackCodec, Float32AndFloat64BothDecode) {
  // msgpack.packb({"cfg_scale": 7.5, "x": 0.1}, use_single_float=True)
  const json single = decode_msgpack(from_hex("82a96366675f7363616c65ca40f00000a178ca3dcccccd"));
  EXPECT_DOUBLE_EQ(single["cfg_scale"].get<double>(), 7.5);
  EXPECT_NEAR(single["x"].get<double>(), 0.1, 1e-7);
  const json twice = decode_msgpack(from_hex("cbbfb999999999999a"));  // float64 -0.1
  EXPECT_DOUBLE_EQ(twice.get<double>(), -0.1);
}

TEST(MsgpackCodec, EmptyAndTruncatedFramesAreRefused) {
  EXPECT_EQ(decode_error(""), "not a MessagePack value: no bytes");
  EXPECT_EQ(decode_error(from_hex("a36162")), "not a MessagePack value: truncated at byte 0")
      << "fixstr of 3 with 2 bytes";
  // {"a": "abc"} cut inside the value's string: the string starts at byte 3.
  EXPECT_EQ(decode_error(from_hex("81a161a361")), "not a MessagePack value: truncated at byte 3");
  EXPECT_EQ(decode_error(from_hex("cd01")), "not a MessagePack value: truncated at byte 0");
  EXPECT_EQ(decode_error(from_hex("92c0cc")), "not a MessagePack value: truncated at byte 2");
  EXPECT_EQ(decode_error(from_hex("91da00")), "not a MessagePack value: truncated at byte 1")
      << "a str16 whose length bytes are cut";
}

TEST(MsgpackCodec, TrailingBytesAreRefused) {
  EXPECT_EQ(decode_error(from_hex("c0c0c0")),
            "not a MessagePack value: 2 trailing bytes from byte 1");
}

TEST(MsgpackCodec, ReservedTypeByteIsRefused) {
  EXPECT_EQ(decode_error(from_hex("92c0c1")),
            "not a MessagePack value: reserved type byte 0xc1 at byte 2");
}

TEST(MsgpackCodec, MapKeysMustBeStrings) {
  EXPECT_EQ(decode_error(from_hex("810102")),
            "not a MessagePack value: the map key at byte 1 is not a string");
  EXPECT_EQ(decode_error(from_hex("82a16101c401610102")),
            "not a MessagePack value: the map key at byte 4 is not a string");
}

TEST(MsgpackCodec, StringsMustBeUtf8) {
  EXPECT_EQ(decode_error(from_hex("91a2fffe")),
            "not a MessagePack value: the string at byte 1 is not UTF-8");
  EXPECT_EQ(decode_error(from_hex("81a2c0afc0")),
            "not a MessagePack value: the string at byte 1 is not UTF-8")
      << "an overlong '/' as a map key";
  EXPECT_EQ(decode_msgpack(from_hex("a2c3a9")), "\u00e9");
}

TEST(MsgpackCodec, NestingDeeperThan32IsRefused) {
  const std::string depth_32 = std::string(32, '\x91') + '\xc0';
  EXPECT_TRUE(decode_msgpack(depth_32).is_array());
  EXPECT_EQ(decode_error(std::string(33, '\x91') + '\xc0'),
            "not a MessagePack value: the array at byte 32 is nested deeper than 32");
  EXPECT_EQ(decode_error(std::string(31, '\x91') + from_hex("81a16180")),
            "not a MessagePack value: the map at byte 34 is nested deeper than 32");
}

TEST(MsgpackCodec, AFrameOfOneMebibyteOfNestedArraysIsRefused) {
  const std::string frame(kMaxMessageBytes, '\x91');
  EXPECT_EQ(decode_error(frame),
            "not a MessagePack value: the array at byte 32 is nested deeper than 32");
}

TEST(MsgpackCodec, CountsLargerThanTheFrameAreRefusedBeforeAnythingIsBuilt) {
  EXPECT_EQ(decode_error(from_hex("ddffffffffc0")),
            "not a MessagePack value: the array at byte 0 declares 4294967295 elements, more than "
            "the 1 bytes left can hold");
  EXPECT_EQ(decode_error(from_hex("df80000000a161c0")),
            "not a MessagePack value: the map at byte 0 declares 2147483648 pairs, more than the 3 "
            "bytes left can hold");
  EXPECT_EQ(decode_error(from_hex("dbffffffff61")), "not a MessagePack value: truncated at byte 0");
  EXPECT_EQ(decode_error(from_hex("c6ffffffff00")), "not a MessagePack value: truncated at byte 0");
  // A map of two pairs given three bytes: "a" then nil, then nothing for the second pair.
  EXPECT_EQ(decode_error(from_hex("82a161c0")),
            "not a MessagePack value: the map at byte 0 declares 2 pairs, more than the 3 bytes "
            "left can hold");
  // Four pairs fit the nine bytes left, but the third key (a 3-byte string at byte 7) is cut.
  EXPECT_EQ(decode_error(from_hex("84a161c0a162c0a36163")),
            "not a MessagePack value: truncated at byte 7");
  EXPECT_EQ(decode_error(from_hex("84a161c0a162c0a163")),
            "not a MessagePack value: truncated at byte 9")
      << "the third value is missing";
}

}  // namespace
}  // namespace df::pixels

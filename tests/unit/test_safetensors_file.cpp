// Tests of the safetensors reader's validation and of the writer, on hand-made files.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/safetensors_file.h"
#include "test_support.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

class SafetensorsFileTest : public ::testing::Test {
 protected:
  // Writes `length` as the header length, then `header`, then `data`.
  std::string write_raw(uint64_t length, const std::string& header, const std::string& data) {
    const std::string path = (dir_.path() / "file.safetensors").string();
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((length >> (8 * i)) & 0xff));
    out << header << data;
    return path;
  }
  std::string write_file(const std::string& header, const std::string& data) {
    return write_raw(header.size(), header, data);
  }

  test::TestDir dir_{"df_safetensors_"};
};

// Runs `open` and returns the message of the kCorruptFile error it must throw.
std::string corrupt_message(const std::string& path) {
  try {
    SafetensorsFile::open(path);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruptFile) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error for " << path;
  return "";
}

TEST_F(SafetensorsFileTest, ReadsValidFileWithMetadataAndDtypes) {
  const float f32[2] = {1.5f, -2.0f};
  const uint16_t f16[3] = {0x3c00, 0x4000, 0xbc00};  // 1, 2, -1
  const uint16_t bf16[1] = {0x3f80};                 // 1
  std::string data(reinterpret_cast<const char*>(f32), 8);
  data.append(reinterpret_cast<const char*>(f16), 6);
  data.append(reinterpret_cast<const char*>(bf16), 2);
  const std::string path =
      write_file(R"({"__metadata__":{"format":"pt"},)"
                 R"("b":{"dtype":"F16","shape":[3],"data_offsets":[8,14]},)"
                 R"("a":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},)"
                 R"("c":{"dtype":"BF16","shape":[],"data_offsets":[14,16]},)"
                 R"("empty":{"dtype":"I64","shape":[0,4],"data_offsets":[16,16]}}   )",
                 data);
  const SafetensorsFile file = SafetensorsFile::open(path);
  ASSERT_EQ(file.tensors().size(), 4u);
  EXPECT_EQ(file.tensors()[0].name, "a");
  EXPECT_EQ(file.metadata().at("format"), "pt");
  const auto* a = file.find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, "F32");
  EXPECT_EQ(a->shape, (std::vector<int64_t>{1, 2}));
  float read[2];
  std::memcpy(read, file.data(*a), 8);
  EXPECT_EQ(read[0], 1.5f);
  EXPECT_EQ(read[1], -2.0f);
  const auto* b = file.find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(std::memcmp(file.data(*b), f16, 6), 0);
  const auto* c = file.find("c");
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->shape.empty());
  EXPECT_EQ(std::memcmp(file.data(*c), bf16, 2), 0);
  EXPECT_EQ(file.find("empty")->end - file.find("empty")->begin, 0u);
  EXPECT_EQ(file.find("missing"), nullptr);
}

TEST_F(SafetensorsFileTest, MoveKeepsTheMapping) {
  const std::string path =
      write_file(R"({"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", "\x07\x09");
  SafetensorsFile first = SafetensorsFile::open(path);
  SafetensorsFile second = std::move(first);
  EXPECT_EQ(second.data(*second.find("x"))[1], 9);
  first = std::move(second);
  EXPECT_EQ(first.data(*first.find("x"))[0], 7);
}

TEST_F(SafetensorsFileTest, RejectsShortFile) {
  const std::string path = (dir_.path() / "short.safetensors").string();
  std::ofstream(path, std::ios::binary) << "abc";
  EXPECT_NE(corrupt_message(path).find("shorter"), std::string::npos);
}

TEST_F(SafetensorsFileTest, RejectsEmptyFile) {
  const std::string path = (dir_.path() / "empty.safetensors").string();
  std::ofstream(path, std::ios::binary).flush();
  corrupt_message(path);
}

TEST_F(SafetensorsFileTest, RejectsHeaderBeyondFile) {
  const std::string path = write_raw(1000, "{}", "");
  EXPECT_NE(corrupt_message(path).find("truncated"), std::string::npos);
}

TEST_F(SafetensorsFileTest, RejectsHugeHeaderLength) {
  EXPECT_NE(corrupt_message(write_raw(~0ull, "{}", "")).find("limit"), std::string::npos);
  corrupt_message(write_raw(1ull << 40, "{}", ""));
}

TEST_F(SafetensorsFileTest, RejectsHeaderThatIsNotJson) {
  EXPECT_NE(corrupt_message(write_file("{not json", "")).find("not valid JSON"), std::string::npos);
  corrupt_message(write_file(std::string("\xff\xfe\x00\x01", 4), ""));
}

TEST_F(SafetensorsFileTest, RejectsHeaderThatIsNotAnObject) {
  EXPECT_NE(corrupt_message(write_file("[1,2]", "")).find("not a JSON object"), std::string::npos);
}

TEST_F(SafetensorsFileTest, RejectsDeepNesting) {
  corrupt_message(write_file(std::string(100000, '[') + std::string(100000, ']'), ""));
}

TEST_F(SafetensorsFileTest, RejectsUnknownDtype) {
  const std::string msg =
      corrupt_message(write_file(R"({"x":{"dtype":"F7","shape":[1],"data_offsets":[0,1]}})", "a"));
  EXPECT_NE(msg.find("unknown dtype 'F7'"), std::string::npos);
  EXPECT_NE(msg.find("file.safetensors"), std::string::npos);
}

TEST_F(SafetensorsFileTest, RejectsSizeThatDoesNotMatchShape) {
  const std::string msg = corrupt_message(write_file(
      R"({"x":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", std::string(12, 'a')));
  EXPECT_NE(msg.find("need 16"), std::string::npos);
}

TEST_F(SafetensorsFileTest, RejectsOverflowingShape) {
  corrupt_message(
      write_file(R"({"x":{"dtype":"F64","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})",
                 std::string(8, 'a')));
}

TEST_F(SafetensorsFileTest, RejectsNegativeOrFractionalShape) {
  corrupt_message(write_file(R"({"x":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", "a"));
  corrupt_message(write_file(R"({"x":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}})", "a"));
}

TEST_F(SafetensorsFileTest, RejectsOffsetsOutOfRange) {
  EXPECT_NE(
      corrupt_message(write_file(R"({"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", "ab"))
          .find("outside"),
      std::string::npos);
  corrupt_message(write_file(R"({"x":{"dtype":"U8","shape":[0],"data_offsets":[3,2]}})", "abc"));
  corrupt_message(write_file(R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", "a"));
  corrupt_message(write_file(R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}})", "a"));
}

TEST_F(SafetensorsFileTest, RejectsOverlappingTensors) {
  const std::string msg =
      corrupt_message(write_file(R"({"x":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},)"
                                 R"("y":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
                                 "abcd"));
  EXPECT_NE(msg.find("overlap"), std::string::npos);
}

TEST_F(SafetensorsFileTest, RejectsMalformedEntries) {
  corrupt_message(write_file(R"({"x":5})", ""));
  corrupt_message(write_file(R"({"x":{"shape":[1],"data_offsets":[0,1]}})", "a"));
  corrupt_message(write_file(R"({"x":{"dtype":"U8","data_offsets":[0,1]}})", "a"));
  corrupt_message(write_file(R"({"__metadata__":{"a":1}})", ""));
  corrupt_message(write_file(R"({"__metadata__":[]})", ""));
}

TEST_F(SafetensorsFileTest, MissingFileIsAnIoError) {
  try {
    SafetensorsFile::open((dir_.path() / "nope.safetensors").string());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
  }
}

TEST_F(SafetensorsFileTest, WriterRoundTrips) {
  const std::string path = (dir_.path() / "out.safetensors").string();
  std::vector<RawTensor> tensors = {
      {"w", "F32", {2}, {0, 0, 128, 63, 0, 0, 0, 64}},
      {"flag", "BOOL", {3}, {1, 0, 1}},
      {"scalar", "F16", {}, {0, 60}},
  };
  write_safetensors(path, tensors, {{"dreamforge.note", "hello"}});
  const SafetensorsFile file = SafetensorsFile::open(path);
  EXPECT_EQ(file.metadata().at("dreamforge.note"), "hello");
  ASSERT_EQ(file.tensors().size(), 3u);
  for (const auto& t : tensors) {
    const auto* info = file.find(t.name);
    ASSERT_NE(info, nullptr) << t.name;
    EXPECT_EQ(info->dtype, t.dtype);
    EXPECT_EQ(info->shape, t.shape);
    EXPECT_EQ(std::vector<uint8_t>(file.data(*info), file.data(*info) + (info->end - info->begin)),
              t.bytes);
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_.path()), fs::directory_iterator()), 1)
      << "the temporary file was left behind";
}

TEST_F(SafetensorsFileTest, WriterRejectsBadTensors) {
  const std::string path = (dir_.path() / "bad.safetensors").string();
  auto expect_invalid = [&](const std::vector<RawTensor>& tensors) {
    try {
      write_safetensors(path, tensors);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    }
  };
  expect_invalid({{"x", "F32", {2}, {1, 2, 3}}});
  expect_invalid({{"x", "Q4", {1}, {1}}});
  expect_invalid({{"x", "U8", {1}, {1}}, {"x", "U8", {1}, {2}}});
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace df::engine

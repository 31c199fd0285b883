// Tests of base64 decoding: padding optional, whitespace ignored, everything else refused.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/base64.h"

namespace df {
namespace {

std::string text_of(const std::optional<std::vector<uint8_t>>& bytes) {
  return bytes ? std::string(bytes->begin(), bytes->end()) : "<nullopt>";
}

std::string encode(const std::vector<uint8_t>& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

TEST(Base64, DecodesPaddedText) {
  EXPECT_EQ(text_of(decode_base64("aGVsbG8=")), "hello");
  EXPECT_EQ(text_of(decode_base64("aGVsbA==")), "hell");
  EXPECT_EQ(text_of(decode_base64("aGVs")), "hel");
}

TEST(Base64, PaddingIsOptional) {
  EXPECT_EQ(text_of(decode_base64("aGVsbG8")), "hello");
  EXPECT_EQ(text_of(decode_base64("aGVsbA")), "hell");
}

TEST(Base64, WhitespaceAndLineBreaksAreIgnored) {
  EXPECT_EQ(text_of(decode_base64(" aGVs\r\nbG8=\n")), "hello");
  EXPECT_EQ(text_of(decode_base64("aG\tVs bA")), "hell");
}

TEST(Base64, EveryByteValueRoundTrips) {
  std::vector<uint8_t> bytes;
  for (int round = 0; round < 3; ++round) {
    for (int value = 0; value < 256; ++value) bytes.push_back(static_cast<uint8_t>(value ^ round));
  }
  for (size_t size : {size_t{1}, size_t{2}, size_t{3}, size_t{766}, bytes.size()}) {
    const std::vector<uint8_t> part(bytes.begin(), bytes.begin() + static_cast<long>(size));
    const auto decoded = decode_base64(encode(part));
    ASSERT_TRUE(decoded) << size;
    EXPECT_EQ(*decoded, part) << size;
  }
}

TEST(Base64, TrailingZeroBytesAreKept) {
  EXPECT_EQ(decode_base64("AAA="), (std::vector<uint8_t>{0, 0}));
  EXPECT_EQ(decode_base64("AAAA"), (std::vector<uint8_t>{0, 0, 0}));
}

TEST(Base64, RefusesTextThatIsNotBase64) {
  for (const char* text : {"", "  \n", "!!!!", "aGVs*G8=", "a", "aGVsb",
                           "aGVsbG8==", "A===", "====", "data:image/png;base64,aGVs"}) {
    EXPECT_FALSE(decode_base64(text)) << "accepted '" << text << "'";
  }
}

TEST(Base64, PaddingOnlyAtTheEnd) {
  for (const char* text : {"aG==aGk=", "AA=A", "=AAA", "aGk=aGk="}) {
    EXPECT_FALSE(decode_base64(text)) << "accepted '" << text << "'";
  }
}

}  // namespace
}  // namespace df

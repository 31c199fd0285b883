// Tests of signed file URLs: HMAC-SHA256 signatures, expiry, tampering, weak secrets.
#include <gtest/gtest.h>

#include <string>

#include "blob/url_signer.h"
#include "core/error.h"
#include "test_support.h"

namespace df::blob {
namespace {

const std::string kSecret = "0123456789abcdef-secret";
const std::string kKey = "dreamforge/default/jobs/j1/9/20261122T130509Z_0_64x64_42.png";

using test::error_code_of;

TEST(UrlSigner, SignatureIsDeterministicLowercaseHexSha256) {
  const UrlSigner signer(kSecret);
  const std::string signature = signer.signature(kKey, 1800000000);
  EXPECT_EQ(signature.size(), 64u);
  EXPECT_EQ(signature.find_first_not_of("0123456789abcdef"), std::string::npos) << signature;
  EXPECT_EQ(signature, UrlSigner(kSecret).signature(kKey, 1800000000));
}

TEST(UrlSigner, SignatureDependsOnKeyExpiryAndSecret) {
  const UrlSigner signer(kSecret);
  const std::string base = signer.signature(kKey, 1800000000);
  EXPECT_NE(base, signer.signature(kKey + "x", 1800000000));
  EXPECT_NE(base, signer.signature(kKey, 1800000001));
  EXPECT_NE(base, UrlSigner(kSecret + "!").signature(kKey, 1800000000));
}

TEST(UrlSigner, VerifyAcceptsAValidSignatureUntilItsExpiry) {
  const UrlSigner signer(kSecret);
  const std::string signature = signer.signature(kKey, 1000);
  EXPECT_NO_THROW(signer.verify(kKey, 1000, signature, 999));
  EXPECT_NO_THROW(signer.verify(kKey, 1000, signature, 1000));
}

TEST(UrlSigner, ExpiredUrlIsForbiddenAndSaysWhen) {
  const UrlSigner signer(kSecret);
  try {
    signer.verify(kKey, 1000, signer.signature(kKey, 1000), 1001);
    ADD_FAILURE() << "accepted an expired URL";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kForbidden);
    EXPECT_EQ(e.details().at("expired_at"), 1000);
  }
}

TEST(UrlSigner, TamperedUrlIsForbidden) {
  const UrlSigner signer(kSecret);
  const std::string signature = signer.signature(kKey, 5000);
  std::string flipped = signature;
  flipped[10] = flipped[10] == '0' ? '1' : '0';
  EXPECT_EQ(error_code_of([&] { signer.verify(kKey, 5000, flipped, 1); }), ErrorCode::kForbidden);
  EXPECT_EQ(error_code_of([&] { signer.verify(kKey, 5001, signature, 1); }), ErrorCode::kForbidden);
  EXPECT_EQ(error_code_of([&] { signer.verify("other.png", 5000, signature, 1); }),
            ErrorCode::kForbidden);
  EXPECT_EQ(error_code_of([&] { signer.verify(kKey, 5000, "", 1); }), ErrorCode::kForbidden);
  EXPECT_EQ(error_code_of([&] { signer.verify(kKey, 5000, signature + "00", 1); }),
            ErrorCode::kForbidden);
  EXPECT_EQ(error_code_of([&] { signer.verify(kKey, 5000, signature.substr(1), 1); }),
            ErrorCode::kForbidden);
}

TEST(UrlSigner, ShortSecretIsRefused) {
  EXPECT_EQ(error_code_of([] { UrlSigner signer("too-short"); }), ErrorCode::kInternal);
  EXPECT_NO_THROW(UrlSigner(std::string(16, 'k')));
}

}  // namespace
}  // namespace df::blob

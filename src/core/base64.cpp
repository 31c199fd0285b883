// Base64 encoding and decoding.
#include "core/base64.h"

#include <string>

#include <openssl/evp.h>

namespace df {

std::string encode_base64(const std::vector<uint8_t>& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::vector<uint8_t>> decode_base64(std::string_view text) {
  std::string clean;
  clean.reserve(text.size());
  for (char c : text) {
    if (c != '\n' && c != '\r' && c != ' ' && c != '\t') clean += c;
  }
  if (clean.empty() || clean.size() % 4 == 1) return std::nullopt;
  while (clean.size() % 4 != 0) clean += '=';
  std::vector<uint8_t> out(clean.size() / 4 * 3);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(clean.data()),
                                static_cast<int>(clean.size()));
  if (n < 0) return std::nullopt;
  size_t trailing = 0;
  for (size_t i = clean.size(); i > 0 && clean[i - 1] == '='; --i) ++trailing;
  if (trailing > 2 || clean.find('=') < clean.size() - trailing) return std::nullopt;
  out.resize(static_cast<size_t>(n) - trailing);
  return out;
}

}  // namespace df

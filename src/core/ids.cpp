// Identifiers and clocks.
#include "core/ids.h"

#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <utility>

#include <openssl/rand.h>

#include "core/error.h"

namespace df {

std::string random_hex(int bytes) {
  std::string raw(static_cast<size_t>(bytes), '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), bytes) != 1) {
    throw Error(ErrorCode::kInternal, "the system random generator failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

// The millisecond and 12-bit sequence of the last UUIDv7 this process made (RFC 9562, 6.2 method
// 1): ids made within one millisecond, or while the wall clock stepped back, still sort in the
// order they were made, so jobs submitted together keep their order.
struct UuidClock {
  std::mutex mutex;
  int64_t last_ms = 0;
  unsigned sequence = 0;
};

constexpr unsigned kSequenceLimit = 0x1000;  // 12 bits

// The next (millisecond, sequence) pair: a new millisecond starts the sequence at a random value
// in its lower half (room to count up), the same or an earlier one counts up, carrying into the
// millisecond when the 12 bits run out.
std::pair<int64_t, unsigned> next_uuid_time() {
  static UuidClock clock;
  const int64_t now = now_ms();
  std::lock_guard lock(clock.mutex);
  if (now > clock.last_ms) {
    clock.last_ms = now;
    clock.sequence = static_cast<unsigned>(std::stoul(random_hex(2), nullptr, 16)) & 0x7ff;
  } else if (++clock.sequence == kSequenceLimit) {
    ++clock.last_ms;
    clock.sequence = 0;
  }
  return {clock.last_ms, clock.sequence};
}

}  // namespace

std::string new_uuid_v7() {
  // 48 bits of milliseconds, version 7, a 12-bit sequence, 62 random bits with the RFC 9562
  // variant.
  const auto [ms, sequence] = next_uuid_time();
  std::string hex = random_hex(16);
  char time_hex[17];
  std::snprintf(time_hex, sizeof(time_hex), "%012llx7%03x",
                static_cast<unsigned long long>(ms) & 0xffffffffffffULL, sequence);
  hex.replace(0, 16, time_hex);
  static constexpr char kVariant[] = "89ab";
  hex[16] = kVariant[std::stoi(hex.substr(16, 1), nullptr, 16) & 3];
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

std::string iso8601_utc(int64_t epoch_ms) {
  std::time_t seconds = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[80];  // room for any int the compiler can imagine in the fields
  std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(epoch_ms % 1000));
  return buffer;
}

}  // namespace df

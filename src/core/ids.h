// Identifiers and clocks: time-ordered UUIDv7 ids, random tokens, wall-clock milliseconds.
#pragma once

#include <cstdint>
#include <string>

namespace df {

// A UUIDv7 ("0190b1c2-...."), ordered by creation time across processes and, within this
// process, strictly increasing in the order they are made.
std::string new_uuid_v7();
// `bytes` random bytes as lowercase hex.
std::string random_hex(int bytes);
// Milliseconds since the Unix epoch.
int64_t now_ms();
// "2026-11-22T13:05:09.123Z".
std::string iso8601_utc(int64_t epoch_ms);

}  // namespace df

// The Lua scripts of the Redis queue: each changes the streams, the delayed set and the dispatch
// hash together, so no other client ever sees a job half dispatched.
//
// The dispatch hash maps a job id to where the job waits: "<stream key> <message id>", or
// "delayed <stream key>" while it sits in the delayed set (scored by when it is due) and is to go
// to that stream once due.
#pragma once

namespace df::queue {

// Dispatches a job unless it already waits somewhere real: its dispatch entry names a message
// that still exists, or it is in the delayed set. Adds it to its stream when due, else to the
// delayed set. Returns 1 when it added the job, 0 when it was already waiting.
// KEYS: dispatch hash, delayed set, high, normal and low streams.
// ARGV: job id, its stream's position among KEYS (3, 4 or 5), run_after_ms, now_ms.
inline constexpr const char* kEnsureScript = R"lua(
local job, stream = ARGV[1], KEYS[tonumber(ARGV[2])]
local entry = redis.call('HGET', KEYS[1], job)
if entry then
  local place, id = string.match(entry, '^(%S+) (%S+)$')
  if place == 'delayed' then
    if redis.call('ZSCORE', KEYS[2], job) then return 0 end
  elseif (place == KEYS[3] or place == KEYS[4] or place == KEYS[5]) and
         #redis.call('XRANGE', place, id, id) > 0 then
    return 0
  end
end
if tonumber(ARGV[3]) > tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[2], ARGV[3], job)
  redis.call('HSET', KEYS[1], job, 'delayed ' .. stream)
else
  redis.call('ZREM', KEYS[2], job)
  local id = redis.call('XADD', stream, '*', 'job_id', job)
  redis.call('HSET', KEYS[1], job, stream .. ' ' .. id)
end
return 1
)lua";

// Moves up to ARGV[2] delayed jobs due at ARGV[1] (now_ms) into the streams their dispatch
// entries name; a delayed job without such an entry is dropped (reconcile dispatches it again).
// Returns how many it moved.
// KEYS: dispatch hash, delayed set, high, normal and low streams.
inline constexpr const char* kPromoteScript = R"lua(
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local moved = 0
for _, job in ipairs(due) do
  redis.call('ZREM', KEYS[2], job)
  local entry = redis.call('HGET', KEYS[1], job)
  local stream = entry and string.match(entry, '^delayed (%S+)$')
  if stream == KEYS[3] or stream == KEYS[4] or stream == KEYS[5] then
    local id = redis.call('XADD', stream, '*', 'job_id', job)
    redis.call('HSET', KEYS[1], job, stream .. ' ' .. id)
    moved = moved + 1
  end
end
return moved
)lua";

// Ends a message: acknowledges and deletes it, and drops the job's dispatch entry when the entry
// names this message (not a newer dispatch of the same job).
// KEYS: dispatch hash, the message's stream. ARGV: consumer group, message id, job id ("" when
// the message names none).
inline constexpr const char* kReleaseScript = R"lua(
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
if ARGV[3] ~= '' and redis.call('HGET', KEYS[1], ARGV[3]) == KEYS[2] .. ' ' .. ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[3])
end
return 1
)lua";

}  // namespace df::queue

// numpy's SeedSequence: hash-mixes the entropy and spawn key words into a pool, then draws words.
#include "engine/sampling/seed_sequence.h"

namespace df::engine::sampling {
namespace {

constexpr uint32_t kInitA = 0x43b0d7e5;
constexpr uint32_t kMultA = 0x931e8875;
constexpr uint32_t kInitB = 0x8b51f9dd;
constexpr uint32_t kMultB = 0x58f38ded;
constexpr uint32_t kMixMultL = 0xca01f9dd;
constexpr uint32_t kMixMultR = 0x4973f715;
constexpr int kShift = 16;

// An integer as numpy coerces it: its 32-bit words, least significant first ([0] for 0).
void append_words(uint64_t value, std::vector<uint32_t>& out) {
  do {
    out.push_back(static_cast<uint32_t>(value));
    value >>= 32;
  } while (value != 0);
}

// The running hash that feeds each word into the pool.
class Hasher {
 public:
  uint32_t operator()(uint32_t value) {
    value ^= constant_;
    constant_ *= kMultA;
    value *= constant_;
    return value ^ (value >> kShift);
  }

 private:
  uint32_t constant_ = kInitA;
};

uint32_t mix(uint32_t x, uint32_t y) {
  const uint32_t result = kMixMultL * x - kMixMultR * y;
  return result ^ (result >> kShift);
}

// The entropy words, padded to the pool size when a spawn key follows, then the spawn key words.
std::vector<uint32_t> assembled_entropy(uint64_t entropy, const std::vector<uint64_t>& spawn_key,
                                        int pool_size) {
  std::vector<uint32_t> words;
  append_words(entropy, words);
  if (!spawn_key.empty() && static_cast<int>(words.size()) < pool_size) words.resize(pool_size, 0);
  for (uint64_t key : spawn_key) append_words(key, words);
  return words;
}

std::vector<uint32_t> mixed_pool(const std::vector<uint32_t>& entropy, int pool_size) {
  Hasher hash;
  std::vector<uint32_t> pool(pool_size);
  for (int i = 0; i < pool_size; ++i) {
    pool[i] = hash(i < static_cast<int>(entropy.size()) ? entropy[i] : 0u);
  }
  for (int src = 0; src < pool_size; ++src) {
    for (int dst = 0; dst < pool_size; ++dst) {
      if (src != dst) pool[dst] = mix(pool[dst], hash(pool[src]));
    }
  }
  for (size_t src = pool_size; src < entropy.size(); ++src) {
    for (int dst = 0; dst < pool_size; ++dst) pool[dst] = mix(pool[dst], hash(entropy[src]));
  }
  return pool;
}

}  // namespace

std::vector<uint32_t> seed_sequence_state(uint64_t entropy, const std::vector<uint64_t>& spawn_key,
                                          int pool_size, int words) {
  const std::vector<uint32_t> pool =
      mixed_pool(assembled_entropy(entropy, spawn_key, pool_size), pool_size);
  std::vector<uint32_t> state(words);
  uint32_t constant = kInitB;
  for (int i = 0; i < words; ++i) {
    uint32_t value = pool[i % pool_size] ^ constant;
    constant *= kMultB;
    value *= constant;
    state[i] = value ^ (value >> kShift);
  }
  return state;
}

}  // namespace df::engine::sampling

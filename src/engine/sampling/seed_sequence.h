// numpy's SeedSequence (the entropy pool and state words torchsde seeds its Brownian tree from).
#pragma once

#include <cstdint>
#include <vector>

namespace df::engine::sampling {

// numpy.random.SeedSequence(entropy, spawn_key=spawn_key, pool_size=pool_size)
// .generate_state(words) for a non-negative integer entropy: the same 32-bit words numpy returns.
std::vector<uint32_t> seed_sequence_state(uint64_t entropy, const std::vector<uint64_t>& spawn_key,
                                          int pool_size, int words);

}  // namespace df::engine::sampling

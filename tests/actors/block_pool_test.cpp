// Block pool: reference counts, eviction order, prefix cache with token confirmation, host
// blocks, double frees.
#include "actors/block_pool.hpp"

#include <catch2/catch.hpp>

#include <numeric>

using namespace actorserve;

namespace {
std::vector<int32_t> block_of(int32_t first, int32_t size = 4) {
  std::vector<int32_t> v(size);
  std::iota(v.begin(), v.end(), first);
  return v;
}
uint64_t constant_hash(uint64_t, std::span<const int32_t>) { return 42; }
} // namespace

TEST_CASE("block pool counts references and frees at zero", "[block_pool]") {
  block_pool pool(4, 4);
  int32_t a = pool.allocate();
  int32_t b = pool.allocate();
  CHECK(a != b);
  CHECK(pool.num_free_blocks() == 2);
  pool.retain(a);
  CHECK(pool.ref_count(a) == 2);
  pool.release(a);
  CHECK(pool.ref_count(a) == 1);
  CHECK(pool.num_free_blocks() == 2);
  pool.release(a);
  CHECK(pool.ref_count(a) == 0);
  CHECK(pool.num_free_blocks() == 3);
  CHECK(pool.usage() == Approx(0.25));
  pool.check_invariants();
}

TEST_CASE("block pool runs out and reports -1", "[block_pool]") {
  block_pool pool(2, 4);
  CHECK(pool.allocate() >= 0);
  CHECK(pool.allocate() >= 0);
  CHECK(pool.allocate() == -1);
}

TEST_CASE("block pool reuses the least recently freed block first", "[block_pool]") {
  block_pool pool(4, 4);
  std::vector<int32_t> blocks;
  for (int i = 0; i < 4; ++i)
    blocks.push_back(pool.allocate());
  CHECK(pool.free_list().empty());
  for (int32_t b : {blocks[2], blocks[0], blocks[3], blocks[1]})
    pool.release(b);
  CHECK(pool.free_list() == std::vector<int32_t>{blocks[2], blocks[0], blocks[3], blocks[1]});
  CHECK(pool.allocate() == blocks[2]);
  CHECK(pool.allocate() == blocks[0]);
  pool.check_invariants();
}

TEST_CASE("a prefix cache hit revives a free block and eviction forgets it", "[block_pool]") {
  block_pool pool(3, 4);
  int32_t a = pool.allocate();
  uint64_t h = pool.hash(0, block_of(10));
  REQUIRE(pool.cache_block(a, h, block_of(10)));
  CHECK(pool.find_cached(h, block_of(10)) == a);
  pool.release(a); // free but still cached, at the tail of the free list
  CHECK(pool.find_cached(h, block_of(10)) == a);
  pool.retain(a); // a hit takes it out of the free list
  CHECK(pool.ref_count(a) == 1);
  CHECK(pool.num_free_blocks() == 2);
  pool.release(a);
  // Allocate every block: `a` is reused last (it was freed last) and loses its entry.
  int32_t x = pool.allocate(), y = pool.allocate(), z = pool.allocate();
  CHECK(z == a);
  CHECK(x != a);
  CHECK(y != a);
  CHECK(pool.find_cached(h, block_of(10)) == -1);
  CHECK_FALSE(pool.is_cached(a));
  pool.check_invariants();
}

TEST_CASE("chained hashes depend on the parent", "[block_pool]") {
  uint64_t h1 = block_pool::chain_hash(0, block_of(1));
  uint64_t h2 = block_pool::chain_hash(h1, block_of(5));
  uint64_t h2_other_parent = block_pool::chain_hash(h1 + 1, block_of(5));
  CHECK(h2 != h2_other_parent);
  CHECK(block_pool::chain_hash(h1, block_of(5)) == h2);
}

TEST_CASE("a hash collision is a miss, never a wrong block", "[block_pool]") {
  block_pool pool(4, 4, 0, true, &constant_hash);
  int32_t a = pool.allocate();
  int32_t b = pool.allocate();
  REQUIRE(pool.cache_block(a, pool.hash(0, block_of(1)), block_of(1)));
  // Different tokens, same hash: the lookup compares tokens.
  CHECK(pool.find_cached(pool.hash(0, block_of(7)), block_of(7)) == -1);
  CHECK(pool.find_cached(pool.hash(0, block_of(1)), block_of(1)) == a);
  // The hash is taken: the second block is simply not cached.
  CHECK_FALSE(pool.cache_block(b, pool.hash(0, block_of(7)), block_of(7)));
  CHECK_FALSE(pool.is_cached(b));
  pool.check_invariants();
}

TEST_CASE("prefix caching off caches nothing", "[block_pool]") {
  block_pool pool(2, 4, 0, false);
  int32_t a = pool.allocate();
  CHECK_FALSE(pool.cache_block(a, 1, block_of(0)));
  CHECK(pool.find_cached(1, block_of(0)) == -1);
}

TEST_CASE("double frees are detected", "[block_pool]") {
  block_pool pool(2, 4, 2);
  int32_t a = pool.allocate();
  pool.release(a);
  CHECK_THROWS_AS(pool.release(a), block_pool_error);
  CHECK_THROWS_AS(pool.release(7), block_pool_error);
  CHECK_THROWS_AS(pool.retain(-1), block_pool_error);
  int32_t h = pool.allocate_host();
  pool.release_host(h);
  CHECK_THROWS_AS(pool.release_host(h), block_pool_error);
  pool.check_invariants();
}

TEST_CASE("host blocks are allocated until none is left", "[block_pool]") {
  block_pool pool(1, 4, 2);
  int32_t h0 = pool.allocate_host();
  int32_t h1 = pool.allocate_host();
  CHECK(h0 != h1);
  CHECK(pool.allocate_host() == -1);
  CHECK(pool.num_free_host_blocks() == 0);
  pool.release_host(h0);
  CHECK(pool.allocate_host() == h0);
}

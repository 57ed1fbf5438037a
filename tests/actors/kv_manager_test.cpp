// The capacity decision: growth, preemption from the back, watermark, prefix hits, swap,
// fork with copy-on-write.
#include "actors/kv_manager.hpp"

#include <catch2/catch.hpp>

#include <numeric>

using namespace actorserve;

namespace {
std::vector<int32_t> tokens(int32_t n, int32_t first = 100) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), first);
  return v;
}

kv_admit admit_of(uint64_t id, const std::vector<int32_t>& toks, int32_t budget) {
  kv_admit a;
  a.seq_id = id;
  a.token_ids = toks;
  a.num_tokens = int32_t(toks.size());
  a.max_new_tokens = budget;
  return a;
}
} // namespace

TEST_CASE("kv manager admits, grows and frees", "[kv_manager]") {
  kv_manager kv(8, 4, 0, true);
  capacity_request r;
  r.admit.push_back(admit_of(1, tokens(10), 10));
  auto reply = kv.process(r);
  REQUIRE(reply.admitted.size() == 1);
  CHECK(reply.admitted[0].num_cached_tokens == 0);
  CHECK(reply.admitted[0].num_tokens_after == 10);
  CHECK(kv.block_table(1).size() == 3);
  REQUIRE(reply.updates.size() == 1);
  CHECK(reply.updates[0].start == 0);
  CHECK(reply.updates[0].blocks == kv.block_table(1));

  capacity_request grow;
  grow.running.push_back({1, 10, 13}); // 13 tokens: a fourth block
  reply = kv.process(grow);
  CHECK(kv.block_table(1).size() == 4);
  REQUIRE(reply.updates.size() == 1);
  CHECK(reply.updates[0].start == 3);
  CHECK(reply.updates[0].blocks.size() == 1);
  kv.check_invariants();

  capacity_request done;
  done.free_seqs.push_back(1);
  reply = kv.process(done);
  CHECK(reply.num_free_blocks == 8);
  CHECK(kv.num_sequences() == 0);
  kv.check_invariants();
}

TEST_CASE("admission is FCFS and stops at the first request that does not fit", "[kv_manager]") {
  kv_manager kv(4, 4, 0, false);
  capacity_request r;
  r.admit.push_back(admit_of(1, tokens(8), 8));  // 2 blocks
  r.admit.push_back(admit_of(2, tokens(12), 12)); // 3 blocks: does not fit
  r.admit.push_back(admit_of(3, tokens(4), 4));   // would fit, but may not overtake
  auto reply = kv.process(r);
  REQUIRE(reply.admitted.size() == 1);
  CHECK(reply.admitted[0].seq_id == 1);
  kv.check_invariants();
}

TEST_CASE("the watermark keeps blocks free for running decodes", "[kv_manager]") {
  kv_manager kv(10, 4, 0, false);
  capacity_request r;
  r.watermark_blocks = 2;
  r.admit.push_back(admit_of(1, tokens(36), 36)); // 9 blocks would leave 1 < 2
  CHECK(kv.process(r).admitted.empty());
  r.admit[0] = admit_of(1, tokens(32), 32);       // 8 blocks leave 2
  CHECK(kv.process(r).admitted.size() == 1);
}

TEST_CASE("growth preempts the sequences at the back of the list first", "[kv_manager]") {
  kv_manager kv(6, 4, 0, false);
  capacity_request r;
  for (uint64_t id = 1; id <= 3; ++id)
    r.admit.push_back(admit_of(id, tokens(8), 8)); // 2 blocks each: pool full
  REQUIRE(kv.process(r).admitted.size() == 3);
  capacity_request grow;
  grow.running = {{1, 8, 9}, {2, 8, 9}, {3, 8, 9}};
  auto reply = kv.process(grow);
  // Sequence 1 needs a block: 3 (the back) is preempted and frees 2; then 2 takes one.
  REQUIRE(reply.preempted.size() == 1);
  CHECK(reply.preempted[0].seq_id == 3);
  CHECK_FALSE(reply.preempted[0].swapped);
  CHECK(kv.block_table(1).size() == 3);
  CHECK(kv.block_table(2).size() == 3);
  CHECK(kv.block_table(3).empty());
  CHECK(reply.admitted.empty());
  kv.check_invariants();
}

TEST_CASE("a sequence that alone does not fit is reported", "[kv_manager]") {
  kv_manager kv(2, 4, 0, false);
  capacity_request r;
  r.admit.push_back(admit_of(1, tokens(8), 8));
  REQUIRE(kv.process(r).admitted.size() == 1);
  capacity_request grow;
  grow.running = {{1, 8, 9}};
  auto reply = kv.process(grow);
  REQUIRE(reply.preempted.size() == 1);
  CHECK(reply.preempted[0].never_fits);
  CHECK(reply.num_free_blocks == 2);
}

TEST_CASE("prefix cache hits skip whole computed blocks and are counted", "[kv_manager]") {
  kv_manager kv(16, 4, 0, true);
  auto prompt = tokens(10);
  capacity_request r;
  r.admit.push_back(admit_of(1, prompt, 10));
  kv.process(r);
  capacity_request c;
  c.commits.push_back({1, {prompt.begin(), prompt.begin() + 8}}); // two full blocks computed
  c.free_seqs.push_back(1);
  kv.process(c);

  auto longer = prompt;
  longer.push_back(7);
  longer.push_back(8);
  capacity_request again;
  again.admit.push_back(admit_of(2, longer, 12));
  auto reply = kv.process(again);
  REQUIRE(reply.admitted.size() == 1);
  CHECK(reply.admitted[0].num_cached_tokens == 8);
  CHECK(reply.prefix_cache_queries == 10 + 12);
  CHECK(reply.prefix_cache_hits == 8);

  // A different first block misses entirely, even though the second block matches.
  auto other = prompt;
  other[0] = 999;
  capacity_request miss;
  miss.admit.push_back(admit_of(3, other, 10));
  reply = kv.process(miss);
  CHECK(reply.admitted[0].num_cached_tokens == 0);
  kv.check_invariants();
}

TEST_CASE("a fully cached prompt still computes its last token", "[kv_manager]") {
  kv_manager kv(16, 4, 0, true);
  auto prompt = tokens(8);
  capacity_request r;
  r.admit.push_back(admit_of(1, prompt, 8));
  r.commits.clear();
  kv.process(r);
  capacity_request c;
  c.commits.push_back({1, prompt});
  kv.process(c);
  capacity_request again;
  again.admit.push_back(admit_of(2, prompt, 8));
  auto reply = kv.process(again);
  CHECK(reply.admitted[0].num_cached_tokens == 4); // not 8: logits need the last token computed
  CHECK(kv.pool().ref_count(kv.block_table(1)[0]) == 2);
  kv.check_invariants();
}

TEST_CASE("swap out and in move a sequence through host blocks", "[kv_manager]") {
  kv_manager kv(4, 4, 4, false);
  capacity_request r;
  r.admit.push_back(admit_of(1, tokens(8), 8));
  r.admit.push_back(admit_of(2, tokens(8), 8));
  kv.process(r);
  auto table2 = kv.block_table(2);
  capacity_request grow;
  grow.preempt_by_swap = true;
  grow.running = {{1, 8, 9}, {2, 8, 9}};
  auto reply = kv.process(grow);
  REQUIRE(reply.preempted.size() == 1);
  CHECK(reply.preempted[0].swapped);
  REQUIRE(reply.swap_out.size() == 2);
  CHECK(reply.swap_out[0].src == table2[0]);
  CHECK(reply.swap_out[1].src == table2[1]);
  CHECK(kv.is_swapped(2));
  CHECK(kv.host_table(2).size() == 2);
  kv.check_invariants();

  auto host2 = kv.host_table(2);
  capacity_request back;
  back.free_seqs.push_back(1);
  kv_admit a;
  a.seq_id = 2;
  a.swapped = true;
  a.num_tokens = 9;
  a.num_computed = 8;
  a.max_new_tokens = 1;
  back.admit.push_back(a);
  reply = kv.process(back);
  REQUIRE(reply.admitted.size() == 1);
  REQUIRE(reply.swap_in.size() == 2);
  CHECK(reply.swap_in[0].src == host2[0]);
  CHECK(reply.swap_in[1].src == host2[1]);
  CHECK_FALSE(kv.is_swapped(2));
  CHECK(kv.block_table(2).size() == 3);
  CHECK(reply.swap_in[0].dst == kv.block_table(2)[0]);
  CHECK(reply.swap_in[1].dst == kv.block_table(2)[1]);
  CHECK(kv.pool().num_free_host_blocks() == 4);
  kv.check_invariants();
}

TEST_CASE("swap falls back to recompute without host blocks", "[kv_manager]") {
  kv_manager kv(4, 4, 1, false);
  capacity_request r;
  r.admit.push_back(admit_of(1, tokens(8), 8));
  r.admit.push_back(admit_of(2, tokens(8), 8));
  kv.process(r);
  capacity_request grow;
  grow.preempt_by_swap = true;
  grow.running = {{1, 8, 9}, {2, 8, 9}};
  auto reply = kv.process(grow);
  REQUIRE(reply.preempted.size() == 1);
  CHECK_FALSE(reply.preempted[0].swapped);
  CHECK(reply.swap_out.empty());
  kv.check_invariants();
}

TEST_CASE("forked sequences share blocks and copy the partly filled one on write", "[kv_manager]") {
  kv_manager kv(8, 4, 0, false);
  capacity_request r;
  r.admit.push_back(admit_of(1, tokens(7), 6)); // 6 of 7 tokens computed next: 2 blocks
  kv.process(r);
  auto parent = kv.block_table(1);
  capacity_request f;
  f.forks.push_back({1, 2});
  f.running = {{1, 6, 7}, {2, 6, 7}}; // both write position 6, in the shared second block
  auto reply = kv.process(f);
  CHECK(kv.block_table(2)[0] == parent[0]); // full block still shared
  CHECK(kv.pool().ref_count(parent[0]) == 2);
  // The first writer copies, after which the second is the only owner and writes in place.
  REQUIRE(reply.copies.size() == 1);
  CHECK(reply.copies[0].src == parent[1]);
  CHECK(kv.block_table(1)[1] == reply.copies[0].dst);
  CHECK(kv.block_table(2)[1] == parent[1]);
  kv.check_invariants();
}

// step_batch: add() and validate() (model/step.hpp).
#include "model/step.hpp"
#include "tests/cpu/test_models.hpp"

#include <catch2/catch.hpp>

using namespace actorserve;
using actorserve::testing::make_sequence;

namespace {

step_batch two_sequences() {
  step_batch b;
  const int32_t prompt[5] = {1, 2, 3, 4, 5}, decode[1] = {9};
  b.add(make_sequence(1, 3, 5, {4, 7}, false), prompt); // positions 3..7, block size 4: blocks 4, 7
  b.add(make_sequence(2, 6, 1, {0, 1}, true), decode);     // position 6: block 1, slot 2
  return b;
}

} // namespace

TEST_CASE("step_batch::add fills positions from num_computed_tokens") {
  const step_batch b = two_sequences();
  CHECK(b.token_ids == std::vector<int32_t>{1, 2, 3, 4, 5, 9});
  CHECK(b.positions == std::vector<int32_t>{3, 4, 5, 6, 7, 6});
  CHECK(b.num_tokens() == 6);
  CHECK(b.num_logits() == 1);
  CHECK(b.validate(4, 8).empty());
}

TEST_CASE("step_batch::validate names what is wrong") {
  auto problem = [](const step_batch& b) { return b.validate(4, 8); };
  step_batch b = two_sequences();
  b.seqs[0].block_table[1] = 8;
  CHECK_THAT(problem(b), Catch::Contains("block_table[1] = 8 is outside [0, 8)"));
  b = two_sequences();
  b.seqs[1].block_table[0] = -1;
  CHECK_THAT(problem(b), Catch::Contains("outside"));
  b = two_sequences();
  b.seqs[0].block_table.pop_back();
  CHECK_THAT(problem(b), Catch::Contains("2 needed for 8 tokens"));
  b = two_sequences();
  b.positions[2] = 9;
  CHECK_THAT(problem(b), Catch::Contains("has position 9, expected 5"));
  b = two_sequences();
  b.positions.pop_back();
  CHECK_THAT(problem(b), Catch::Contains("positions"));
  b = two_sequences();
  b.seqs[1].seq_id = 1;
  CHECK_THAT(problem(b), Catch::Contains("appears twice"));
  b = two_sequences();
  b.seqs[1].num_new_tokens = 0;
  CHECK_THAT(problem(b), Catch::Contains("num_new_tokens must be >= 1"));
  b = two_sequences();
  b.seqs[0].num_new_tokens = 4; // covers 5 of 6 tokens
  CHECK(!problem(b).empty());
  b = two_sequences();
  b.seqs[1].block_table = {4, 7}; // position 6 of seq 2 lands where seq 1 writes position 6
  CHECK_THAT(problem(b), Catch::Contains("same KV slot"));
  CHECK_THAT(step_batch{}.validate(4, 8), Catch::Contains("no sequences"));
  CHECK_THAT(two_sequences().validate(0, 8), Catch::Contains("block_size"));
}

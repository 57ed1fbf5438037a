// The CPU backend's forward pass: chunked prefill, mixed batches, block copies and swaps, and
// refusal of bad steps. Results must not depend on how the work was cut into steps.
#include "model/error.hpp"
#include "tests/cpu/test_models.hpp"

#include <catch2/catch.hpp>

#include <cmath>

using namespace actorserve;
using namespace actorserve::testing;

namespace {

const auto sequence = make_sequence;

std::vector<int32_t> prompt_of(int32_t n, int32_t salt) {
  std::vector<int32_t> p;
  for (int32_t i = 0; i < n; ++i)
    p.push_back((i * 31 + salt * 17 + 5) % 250 + 3);
  return p;
}

// Prefills `prompt` into `table` in chunks of the given sizes; returns the last chunk's logits.
std::vector<float> prefill(backend& b, uint64_t id, const std::vector<int32_t>& prompt,
                           const std::vector<int32_t>& table, const std::vector<int32_t>& chunks) {
  std::vector<float> logits;
  int32_t done = 0;
  for (int32_t n : chunks) {
    step_batch step;
    const bool last = done + n == int32_t(prompt.size());
    step.add(sequence(id, done, n, table, last), prompt.data() + done);
    logits = step_logits(b, step);
    done += n;
  }
  REQUIRE(done == int32_t(prompt.size()));
  return logits;
}

std::vector<float> decode(backend& b, uint64_t id, int32_t position, int32_t token, const std::vector<int32_t>& table) {
  step_batch step;
  step.add(sequence(id, position, 1, table, true), &token);
  return step_logits(b, step);
}

} // namespace

TEST_CASE("a prefill in chunks of odd sizes gives the logits of one prefill") {
  for (const char* name : {"llama", "qwen3"}) {
    INFO(name);
    temp_model m(name);
    auto one = m.load();
    auto chunked = m.load();
    const auto prompt = prompt_of(45, 1);
    const std::vector<int32_t> table{0, 1, 2};
    const auto expected = prefill(*one, 1, prompt, table, {45});
    const auto got = prefill(*chunked, 1, prompt, table, {7, 13, 25}); // chunk ends mid-block
    CHECK(max_abs_diff(expected, got) < 1e-4f);
    // And the decode steps after it read the same cache.
    for (int32_t i = 0; i < 3; ++i)
      CHECK(max_abs_diff(decode(*one, 1, 45 + i, 7 + i, table), decode(*chunked, 1, 45 + i, 7 + i, table)) < 1e-4f);
  }
}

TEST_CASE("a mixed batch gives each sequence the logits it gets alone") {
  temp_model m("qwen2");
  const auto pa = prompt_of(20, 1), pb = prompt_of(30, 2), pc = prompt_of(25, 3);
  // Sequences alone, blocks 0, 1, 2 in order.
  std::vector<float> alone_a, alone_b, alone_c;
  {
    auto b = m.load();
    alone_a = prefill(*b, 1, pa, {0, 1}, {20});
  }
  {
    auto b = m.load();
    prefill(*b, 2, pb, {0, 1}, {30});
    alone_b = decode(*b, 2, 30, 99, {0, 1});
  }
  {
    auto b = m.load();
    alone_c = prefill(*b, 3, pc, {0, 1}, {16, 9});
  }
  // Together, with scattered blocks: B decodes, A prefills all of its prompt, C its second chunk.
  auto b = m.load();
  const std::vector<int32_t> ta{9, 2}, tb{5, 11}, tc{7, 3};
  prefill(*b, 2, pb, tb, {30});
  {
    step_batch first_chunk;
    first_chunk.add(sequence(3, 0, 16, tc, false), pc.data());
    step_logits(*b, first_chunk);
  }
  step_batch mixed;
  const int32_t next_b = 99;
  mixed.add(sequence(2, 30, 1, tb, true), &next_b);
  mixed.add(sequence(1, 0, 20, ta, true), pa.data());
  mixed.add(sequence(3, 16, 9, tc, true), pc.data() + 16);
  const auto logits = step_logits(*b, mixed);
  const size_t vocab = size_t(b->config().vocab_size);
  REQUIRE(logits.size() == 3 * vocab);
  auto row = [&](size_t i) { return std::vector<float>(logits.begin() + i * vocab, logits.begin() + (i + 1) * vocab); };
  CHECK(max_abs_diff(row(0), alone_b) < 1e-5f);
  CHECK(max_abs_diff(row(1), alone_a) < 1e-5f);
  CHECK(max_abs_diff(row(2), alone_c) < 1e-5f);
}

TEST_CASE("copy_blocks and a swap out and back in keep the cache contents") {
  temp_model m("mistral");
  cpu_backend_options o;
  o.num_blocks = 16;
  o.num_host_blocks = 4;
  auto b = m.load(o);
  const auto prompt = prompt_of(40, 4);
  prefill(*b, 1, prompt, {0, 1, 2}, {40});
  const auto expected = decode(*b, 1, 40, 11, {0, 1, 2});

  // Copy-on-write: the copies answer like the originals.
  b->copy_blocks({{0, 5}, {1, 6}, {2, 7}});
  CHECK(max_abs_diff(decode(*b, 1, 40, 11, {5, 6, 7}), expected) < 1e-6f);

  // Swap out, overwrite the device blocks with another sequence, swap into other blocks.
  b->swap_out({{0, 3}, {1, 0}, {2, 1}});
  prefill(*b, 2, prompt_of(48, 5), {0, 1, 2}, {48});
  b->swap_in({{3, 12}, {0, 4}, {1, 8}});
  CHECK(max_abs_diff(decode(*b, 1, 40, 11, {12, 4, 8}), expected) < 1e-6f);
  // Overwritten blocks really answer differently (the test above is not vacuous).
  CHECK(max_abs_diff(decode(*b, 1, 40, 11, {0, 1, 2}), expected) > 1e-3f);

  CHECK_THROWS_AS(b->copy_blocks({{0, 16}}), model_error);
  CHECK_THROWS_AS(b->swap_out({{0, 4}}), model_error);
  CHECK_THROWS_AS(b->swap_in({{-1, 0}}), model_error);
}

TEST_CASE("bad steps raise model_error and leave the backend usable") {
  temp_model m("llama");
  cpu_backend_options o;
  o.num_blocks = 8;
  auto b = m.load(o);
  const auto prompt = prompt_of(10, 6);
  sequence_sampling_state greedy;
  greedy.params.temperature = 0.0f;
  std::vector<sampled_token> out;
  auto run = [&](const step_batch& step, size_t states) {
    b->execute(step, std::vector<const sequence_sampling_state*>(states, &greedy), out);
  };
  auto error_of = [&](const step_batch& step, size_t states = 1) -> std::string {
    try {
      run(step, states);
    } catch (const model_error& e) {
      return e.what();
    }
    return "";
  };
  step_batch good;
  good.add(sequence(1, 0, 10, {0}, true), prompt.data());

  step_batch s = good;
  s.seqs[0].block_table = {8};
  CHECK_THAT(error_of(s), Catch::Contains("outside [0, 8)"));
  s = good;
  s.seqs[0].block_table = {-3};
  CHECK_THAT(error_of(s), Catch::Contains("outside"));
  s = good;
  s.positions[4] = 7;
  CHECK_THAT(error_of(s), Catch::Contains("position"));
  s = good;
  s.seqs[0].num_computed_tokens = 10; // context 20 needs two blocks
  CHECK_THAT(error_of(s), Catch::Contains("needed"));
  s = good;
  s.token_ids[3] = int32_t(b->config().vocab_size);
  CHECK_THAT(error_of(s), Catch::Contains("vocabulary"));
  CHECK_THAT(error_of(good, 0), Catch::Contains("sampling states"));
  CHECK_THAT(error_of(step_batch{}), Catch::Contains("no sequences"));
  cpu_backend_options bad;
  bad.block_size = 0;
  CHECK_THROWS_AS(m.load(bad), model_error);

  // After all that the backend still computes what a fresh one does.
  const auto logits = step_logits(*b, good);
  auto fresh = m.load(o);
  CHECK(max_abs_diff(logits, step_logits(*fresh, good)) == 0.0f);
}

TEST_CASE("greedy generation is the same for any chunk size and block size") {
  temp_model m("qwen3");
  const auto prompt = prompt_of(37, 7);
  generation_options g;
  g.max_tokens = 12;
  g.ignore_eos = true;
  g.sampling.temperature = 0.0f;
  std::vector<int32_t> reference;
  for (auto [chunk, block] : {std::pair{512, 16}, std::pair{5, 16}, std::pair{11, 4}, std::pair{37, 1}}) {
    cpu_backend_options o;
    o.block_size = block;
    o.num_blocks = 64 / block + 64;
    auto b = m.load(o);
    g.chunk_size = chunk;
    const auto r = generate_sequence(*b, prompt, g);
    CHECK(r.token_ids.size() == 12);
    if (reference.empty())
      reference = r.token_ids;
    CHECK(r.token_ids == reference);
  }
}

TEST_CASE("fp8 weight quantization rounds the linear layers and nothing else") {
  temp_model m("llama");
  cpu_backend_options fp8;
  fp8.quantization = "fp8";
  auto plain = m.load();
  auto quantized = m.load(fp8);
  const std::vector<int32_t> prompt = prompt_of(21, 4);
  const std::vector<int32_t> table = {0, 1};
  const std::vector<float> a = prefill(*plain, 1, prompt, table, {21});
  const std::vector<float> b = prefill(*quantized, 1, prompt, table, {21});
  REQUIRE(a.size() == b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(a[i]) * a[i];
  }
  const double rel = std::sqrt(num / den);
  INFO("relative L2 difference of the logits: " << rel);
  CHECK(rel > 1e-4); // the weights really were rounded (E4M3 keeps 3 mantissa bits)
  // and only by the rounding (at most 1/16 of each weight; measured 0.14 on this random model,
  // whose logits amplify weight noise far more than a trained one's)
  CHECK(rel < 0.25);
  cpu_backend_options bad;
  bad.quantization = "int4";
  CHECK_THROWS_AS(m.load(bad), model_error);
}

// The GPU sampler and top-logprobs kernel against the CPU sampler (model/sampling.cpp): the
// same logits and sampling state must give the same token, the same logprob and the same top
// logprobs, for greedy, temperature, top-k, top-p, min-p, penalties and their combinations,
// with bf16 logits (many exact ties) and fp32 logits.
#include "gpu/logprobs.hpp"
#include "gpu/sampler.hpp"
#include "model/sampling.hpp"
#include "tests/gpu/gpu_test_util.hpp"

#include <algorithm>

using namespace actorserve;
using namespace actorserve::gpu;
using namespace actorserve::gpu::testing;

namespace {

struct sample_case {
  sequence_sampling_state state;
  std::vector<float> logits; // already rounded to the dtype
};

/// Runs the GPU sampler over `cases` (one row each) and returns tokens, logprobs, normalizers.
void run_gpu(dtype t, int32_t vocab, std::vector<sample_case>& cases, std::vector<int32_t>& tokens,
             std::vector<float>& logprobs, std::vector<float>& lse) {
  const int32_t rows = int32_t(cases.size());
  std::vector<float> flat;
  std::vector<sampler_row> srows;
  std::vector<int32_t> ids, counts;
  for (int32_t r = 0; r < rows; ++r) {
    const auto& st = cases[size_t(r)].state;
    flat.insert(flat.end(), cases[size_t(r)].logits.begin(), cases[size_t(r)].logits.end());
    const sampler_row s = make_sampler_row(st, r, ids, counts);
    srows.push_back(s);
  }
  ids.push_back(0);
  counts.push_back(0);
  device_buffer d_logits = upload(t, flat), d_rows = upload_raw(srows), d_ids = upload_raw(ids),
                d_counts = upload_raw(counts);
  device_buffer d_work(size_t(rows) * size_t(vocab) * 4), d_tok(size_t(rows) * 4), d_lp(size_t(rows) * 4),
      d_lse(size_t(rows) * 4);
  sampler_args a;
  a.logits = d_logits.get();
  a.logits_stride = vocab;
  a.vocab_size = vocab;
  a.rows = d_rows.as<sampler_row>();
  a.num_rows = rows;
  a.penalty_ids = d_ids.as<int32_t>();
  a.penalty_counts = d_counts.as<int32_t>();
  a.work = d_work.as<float>();
  a.out_tokens = d_tok.as<int32_t>();
  a.out_logprobs = d_lp.as<float>();
  a.out_log_normalizer = d_lse.as<float>();
  launch_sampler(a, t, nullptr);
  tokens = download_raw<int32_t>(d_tok, size_t(rows));
  logprobs = download_raw<float>(d_lp, size_t(rows));
  lse = download_raw<float>(d_lse, size_t(rows));
}

std::vector<float> make_logits(std::mt19937& rng, dtype t, int32_t vocab, float scale) {
  std::vector<float> v = random_values(rng, size_t(vocab), scale);
  // A few exact ties at the top, the tie rules matter there.
  v[size_t(vocab / 3)] = v[size_t(vocab / 2)] = v[size_t(vocab - 1)] = 3.0f * scale;
  for (auto& x : v)
    x = round_as(t, x);
  return v;
}

} // namespace

TEST_CASE("GPU sampler picks the CPU sampler's token", "[gpu][sampler]") {
  require_gpu();
  std::mt19937 rng(10);
  for (dtype t : {dtype::bf16, dtype::f32})
    for (int32_t vocab : {50, 1000, 32003, 128256}) {
      std::vector<sample_case> cases;
      for (int i = 0; i < 48; ++i) {
        sample_case c;
        sampling_params& p = c.state.params;
        p.seed = rng();
        switch (i % 8) {
          case 0: p.temperature = 0.0f; break;                                  // greedy
          case 1: p.temperature = 0.7f; break;                                  // plain
          case 2: p.temperature = 1.0f; p.top_k = 1 + int32_t(rng() % 50); break;
          case 3: p.temperature = 0.9f; p.top_p = 0.05f + float(rng() % 90) / 100.0f; break;
          case 4: p.temperature = 1.3f; p.min_p = float(rng() % 30) / 100.0f; break;
          case 5: p.temperature = 0.8f; p.top_k = 40; p.top_p = 0.9f; p.min_p = 0.05f; break;
          case 6: p.temperature = 0.0f; p.repetition_penalty = 1.3f; p.presence_penalty = 0.5f;
                  p.frequency_penalty = 0.3f; break;                            // greedy + penalties
          case 7: p.temperature = 1.1f; p.top_p = 0.8f; p.repetition_penalty = 0.7f;
                  p.frequency_penalty = -0.4f; break;
        }
        for (int j = 0; j < 20; ++j)
          c.state.prompt_token_ids.push_back(int32_t(rng() % uint32_t(vocab)));
        for (int j = 0; j < int(rng() % 30); ++j)
          c.state.output_token_ids.push_back(int32_t(rng() % uint32_t(vocab)));
        // Near-flat and peaked distributions both.
        c.logits = make_logits(rng, t, vocab, i % 3 == 0 ? 0.2f : 3.0f);
        cases.push_back(std::move(c));
      }
      std::vector<int32_t> tokens;
      std::vector<float> logprobs, lse;
      run_gpu(t, vocab, cases, tokens, logprobs, lse);
      for (size_t i = 0; i < cases.size(); ++i) {
        std::vector<float> logits = cases[i].logits;
        const sampled_token want = sample_token(logits.data(), vocab, cases[i].state);
        INFO(name_of(t) << " vocab " << vocab << " case " << i << " temperature " << cases[i].state.params.temperature
                        << " top_k " << cases[i].state.params.top_k << " top_p " << cases[i].state.params.top_p
                        << " min_p " << cases[i].state.params.min_p);
        REQUIRE(tokens[i] == want.token);
        REQUIRE(std::abs(logprobs[i] - want.logprob) < 1e-4f);
      }
    }
}

TEST_CASE("GPU top logprobs match the CPU sampler's", "[gpu][logprobs]") {
  require_gpu();
  std::mt19937 rng(11);
  for (dtype t : {dtype::bf16, dtype::f32}) {
    const int32_t vocab = 32003, rows = 5, k = 20;
    std::vector<sample_case> cases;
    for (int r = 0; r < rows; ++r) {
      sample_case c;
      c.state.params.temperature = 0.0f;
      c.state.params.logprobs = k;
      c.logits = make_logits(rng, t, vocab, 2.0f);
      cases.push_back(std::move(c));
    }
    std::vector<int32_t> tokens;
    std::vector<float> logprobs, lse;
    run_gpu(t, vocab, cases, tokens, logprobs, lse);
    std::vector<float> flat;
    for (auto& c : cases)
      flat.insert(flat.end(), c.logits.begin(), c.logits.end());
    std::vector<int32_t> row_ids = {0, 1, 2, 3, 4};
    device_buffer d_logits = upload(t, flat), d_rows = upload_raw(row_ids), d_lse = upload_raw(lse);
    device_buffer d_ids(size_t(rows * k) * 4), d_vals(size_t(rows * k) * 4);
    logprobs_args a;
    a.logits = d_logits.get();
    a.logits_stride = vocab;
    a.vocab_size = vocab;
    a.rows = d_rows.as<int32_t>();
    a.log_normalizer = d_lse.as<float>();
    a.num_rows = rows;
    a.k = k;
    a.out_ids = d_ids.as<int32_t>();
    a.out_logprobs = d_vals.as<float>();
    launch_logprobs(a, t, nullptr);
    const auto ids = download_raw<int32_t>(d_ids, size_t(rows * k));
    const auto vals = download_raw<float>(d_vals, size_t(rows * k));
    for (int r = 0; r < rows; ++r) {
      std::vector<float> logits = cases[size_t(r)].logits;
      const sampled_token want = sample_token(logits.data(), vocab, cases[size_t(r)].state);
      REQUIRE(want.top_logprobs.size() == size_t(k));
      for (int e = 0; e < k; ++e) {
        INFO(name_of(t) << " row " << r << " entry " << e);
        REQUIRE(ids[size_t(r * k + e)] == want.top_logprobs[size_t(e)].first);
        REQUIRE(std::abs(vals[size_t(r * k + e)] - want.top_logprobs[size_t(e)].second) < 1e-4f);
      }
    }
  }
}

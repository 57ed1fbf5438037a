// The CUDA backend end to end against the CPU reference backend on tiny random models of every
// architecture (Llama with llama3 rope scaling, Qwen2 with q/k/v bias and tied embeddings,
// Qwen3 with qk-norm and head_dim * heads != hidden, Mistral with linear scaling and MHA):
// chunked prefill of several prompts in one step, then batched decode through CUDA graphs.
#include "gpu/cuda_backend.hpp"
#include "model/cpu_backend.hpp"
#include "model/error.hpp"
#include "tests/gpu/gpu_test_util.hpp"
#include "tests/gpu/tiny_model.hpp"
#include "tests/testing.hpp"

using namespace actorserve;
using namespace actorserve::gpu;
using namespace actorserve::gpu::testing;

namespace {

const std::vector<std::vector<int32_t>> kPrompts = {
    {1, 17, 250, 3, 99, 42, 7},
    {1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34},
    {1, 300},
    {1, 88, 77, 66, 55, 44, 33, 22, 11, 100, 200, 201, 202, 203, 150, 151, 152, 153, 154, 155, 156, 157, 158, 159, 160,
     161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 173, 174, 175, 176, 177, 178, 179, 180, 181, 182, 183,
     184, 185, 186, 187, 188, 189, 190, 191, 192, 193, 194, 195, 196, 197, 198, 199, 12, 13, 14, 15, 16, 17, 18, 19, 20},
};

cuda_backend_options small_options(const std::string& dtype) {
  cuda_backend_options o;
  o.dtype = dtype;
  o.num_blocks = 512;
  o.num_host_blocks = 32;
  o.max_num_seqs = 8;
  o.max_num_batched_tokens = 256;
  return o;
}

double max_rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]))
      return INFINITY;
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

} // namespace

TEST_CASE("CUDA fp32 matches the CPU backend token for token on every architecture", "[gpu][backend]") {
  require_gpu();
  for (const auto& v : tiny_variants()) {
    actorserve::testing::temp_dir dir;
    write_tiny_model(dir.path(), v.config);
    cpu_backend_options co;
    co.num_blocks = 512;
    co.num_threads = 2;
    auto cpu = make_cpu_backend(dir.path(), co);
    auto gpu = make_cuda_backend(dir.path(), small_options("float32"));
    const std::vector<sampling_params> greedy(1);
    std::vector<sampling_params> params = {sampling_params{}, sampling_params{}};
    params[0].temperature = 0.0f;
    params[1].temperature = 0.8f; // sampled with a seed: same logits, same uniform, same token
    params[1].top_p = 0.9f;
    params[1].seed = 77;
    const int steps = 16;
    const generation want = generate(*cpu, kPrompts, steps, 20, params);
    const generation got = generate(*gpu, kPrompts, steps, 20, params);
    for (size_t s = 0; s < kPrompts.size(); ++s) {
      INFO(v.name << " sequence " << s);
      REQUIRE(got.tokens[s] == want.tokens[s]);
      for (int k = 0; k < steps; ++k)
        REQUIRE(max_rel_error(got.logits[s][size_t(k)], want.logits[s][size_t(k)]) < 1e-4);
    }
  }
}

TEST_CASE("CUDA bf16 and fp16 stay within tolerance of the CPU backend (teacher forced)", "[gpu][backend]") {
  require_gpu();
  for (const auto& v : tiny_variants())
    for (const char* dtype : {"bfloat16", "float16"}) {
      actorserve::testing::temp_dir dir;
      write_tiny_model(dir.path(), v.config);
      cpu_backend_options co;
      co.num_blocks = 512;
      co.num_threads = 2;
      auto cpu = make_cpu_backend(dir.path(), co);
      auto gpu = make_cuda_backend(dir.path(), small_options(dtype));
      std::vector<sampling_params> greedy(1);
      greedy[0].temperature = 0.0f;
      const int steps = 12;
      const generation want = generate(*cpu, kPrompts, steps, 20, greedy);
      const generation got = generate(*gpu, kPrompts, steps, 20, greedy, &want.tokens);
      const double tol = std::string(dtype) == "bfloat16" ? 3e-2 : 5e-3;
      for (size_t s = 0; s < kPrompts.size(); ++s)
        for (int k = 0; k < steps; ++k) {
          const auto& w = want.logits[s][size_t(k)];
          const auto& g = got.logits[s][size_t(k)];
          INFO(v.name << " " << dtype << " sequence " << s << " step " << k);
          const double err = max_rel_error(g, w);
          REQUIRE(err < tol);
          // Greedy agrees wherever the CPU's top-2 margin exceeds the error scale.
          std::vector<float> sorted = w;
          std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
          double rms = 0;
          for (float x : w)
            rms += double(x) * x;
          rms = std::sqrt(rms / double(w.size()));
          if (sorted[0] - sorted[1] > 4 * tol * rms)
            REQUIRE(got.tokens[s][size_t(k)] == want.tokens[s][size_t(k)]);
        }
    }
}

TEST_CASE("CUDA graphs and eager steps agree, copies and swaps keep the cache", "[gpu][backend]") {
  require_gpu();
  const auto variants = tiny_variants();
  actorserve::testing::temp_dir dir;
  write_tiny_model(dir.path(), variants[0].config);
  auto b = make_cuda_backend(dir.path(), small_options("bfloat16"));
  auto& cuda = dynamic_cast<cuda_backend&>(*b);
  REQUIRE(cuda.startup().num_graphs == 4); // 1, 2, 4, 8
  std::vector<sampling_params> greedy(1);
  greedy[0].temperature = 0.0f;
  const generation with_graphs = generate(*b, kPrompts, 10, 64, greedy);
  cuda.set_graphs_enabled(false);
  const generation eager = generate(*b, kPrompts, 10, 64, greedy, nullptr, 200);
  cuda.set_graphs_enabled(true);
  for (size_t s = 0; s < kPrompts.size(); ++s) {
    REQUIRE(with_graphs.tokens[s] == eager.tokens[s]);
    for (size_t k = 0; k < 10; ++k)
      REQUIRE(max_rel_error(with_graphs.logits[s][k], eager.logits[s][k]) < 1e-2);
  }

  // One sequence prefilled into blocks 0.., then copied to 300.. and swapped out and back in
  // to 400..: a decode step from each copy gives the same logits.
  const std::vector<int32_t> prompt = kPrompts[3];
  step_batch prefill;
  step_sequence seq;
  seq.seq_id = 1;
  seq.num_new_tokens = int32_t(prompt.size());
  seq.needs_logits = true;
  const int32_t blocks = (seq.num_new_tokens + 1 + 15) / 16;
  for (int32_t i = 0; i < blocks; ++i)
    seq.block_table.push_back(i);
  prefill.add(seq, prompt.data());
  sequence_sampling_state st;
  st.params.temperature = 0.0f;
  std::vector<sampled_token> out;
  b->execute(prefill, {&st}, out);
  std::vector<block_copy> to_copy, to_host, from_host;
  for (int32_t i = 0; i < blocks; ++i) {
    to_copy.push_back({i, 300 + i});
    to_host.push_back({i, i});
    from_host.push_back({i, 400 + i});
  }
  b->copy_blocks(to_copy);
  b->swap_out(to_host);
  b->swap_in(from_host);
  std::vector<std::vector<float>> logits;
  for (int32_t base : {0, 300, 400}) {
    step_batch decode;
    step_sequence d;
    d.seq_id = 1;
    d.num_computed_tokens = int32_t(prompt.size());
    d.num_new_tokens = 1;
    d.needs_logits = true;
    for (int32_t i = 0; i < blocks; ++i)
      d.block_table.push_back(base + i);
    decode.add(d, &out[0].token);
    std::vector<sampled_token> o;
    logits.emplace_back();
    b->execute(decode, {&st}, o, &logits.back());
  }
  REQUIRE(logits[1] == logits[0]);
  REQUIRE(logits[2] == logits[0]);
}

TEST_CASE("CUDA backend refuses bad steps with model_error and keeps working", "[gpu][backend]") {
  require_gpu();
  actorserve::testing::temp_dir dir;
  write_tiny_model(dir.path(), tiny_variants()[0].config);
  auto b = make_cuda_backend(dir.path(), small_options("bfloat16"));
  sequence_sampling_state st;
  st.params.temperature = 0.0f;
  std::vector<sampled_token> out;
  auto one = [&](int32_t token, int32_t block) {
    step_batch step;
    step_sequence s;
    s.num_new_tokens = 1;
    s.needs_logits = true;
    s.block_table = {block};
    step.add(s, &token);
    b->execute(step, {&st}, out);
  };
  REQUIRE_THROWS_AS(one(301, 0), model_error);   // token id past the vocabulary
  REQUIRE_THROWS_AS(one(5, 512), model_error);   // block id past the cache
  REQUIRE_THROWS_AS(b->copy_blocks({{0, 9999}}), model_error);
  REQUIRE_NOTHROW(one(5, 0));
  REQUIRE(out.size() == 1);
  REQUIRE(out[0].token >= 0);
  REQUIRE(out[0].token < 301);
  cuda_backend_options bad = small_options("int8");
  REQUIRE_THROWS_AS(make_cuda_backend(dir.path(), bad), model_error);
}

// --quantization fp8: the same E4M3 weights on both backends (the CPU backend rounds its fp32
// weights to E4M3 per output row with the reference; the CUDA backend quantizes on the device).
namespace {

cuda_backend_options fp8_options(const std::string& dtype) {
  cuda_backend_options o = small_options(dtype);
  o.quantization = "fp8";
  return o;
}

std::unique_ptr<backend> cpu_fp8(const std::filesystem::path& dir) {
  cpu_backend_options co;
  co.num_blocks = 512;
  co.num_threads = 2;
  co.quantization = "fp8";
  return make_cpu_backend(dir, co);
}

} // namespace

TEST_CASE("CUDA fp8 in fp32 matches the CPU backend's fp8 token for token on every architecture",
          "[gpu][backend][fp8]") {
  require_gpu();
  for (const auto& v : tiny_variants()) {
    actorserve::testing::temp_dir dir;
    write_tiny_model(dir.path(), v.config);
    auto cpu = cpu_fp8(dir.path());
    auto gpu = make_cuda_backend(dir.path(), fp8_options("float32"));
    std::vector<sampling_params> params(1);
    params[0].temperature = 0.0f;
    const int steps = 16;
    const generation want = generate(*cpu, kPrompts, steps, 20, params);
    const generation got = generate(*gpu, kPrompts, steps, 20, params);
    for (size_t s = 0; s < kPrompts.size(); ++s) {
      INFO(v.name << " sequence " << s);
      REQUIRE(got.tokens[s] == want.tokens[s]);
      for (int k = 0; k < steps; ++k)
        REQUIRE(max_rel_error(got.logits[s][size_t(k)], want.logits[s][size_t(k)]) < 1e-4);
    }
  }
}

TEST_CASE("CUDA fp8 in bf16 stays within tolerance of the CPU backend's fp8 (teacher forced)",
          "[gpu][backend][fp8]") {
  require_gpu();
  for (const auto& v : tiny_variants()) {
    actorserve::testing::temp_dir dir;
    write_tiny_model(dir.path(), v.config);
    auto cpu = cpu_fp8(dir.path());
    auto gpu = make_cuda_backend(dir.path(), fp8_options("bfloat16"));
    std::vector<sampling_params> greedy(1);
    greedy[0].temperature = 0.0f;
    const int steps = 12;
    const generation want = generate(*cpu, kPrompts, steps, 20, greedy);
    const generation got = generate(*gpu, kPrompts, steps, 20, greedy, &want.tokens);
    for (size_t s = 0; s < kPrompts.size(); ++s)
      for (int k = 0; k < steps; ++k) {
        INFO(v.name << " sequence " << s << " step " << k);
        REQUIRE(max_rel_error(got.logits[s][size_t(k)], want.logits[s][size_t(k)]) < 3e-2);
      }
  }
}

TEST_CASE("CUDA fp8 graphs and eager steps agree, and fp8 weights take less memory", "[gpu][backend][fp8]") {
  require_gpu();
  actorserve::testing::temp_dir dir;
  write_tiny_model(dir.path(), tiny_variants()[0].config);
  auto b = make_cuda_backend(dir.path(), fp8_options("bfloat16"));
  auto& cuda = dynamic_cast<cuda_backend&>(*b);
  REQUIRE(cuda.startup().num_graphs == 4);
  REQUIRE(cuda.startup().quantization == "fp8");
  {
    auto plain = make_cuda_backend(dir.path(), small_options("bfloat16"));
    REQUIRE(cuda.startup().weight_bytes < dynamic_cast<cuda_backend&>(*plain).startup().weight_bytes * 6 / 10);
  }
  std::vector<sampling_params> greedy(1);
  greedy[0].temperature = 0.0f;
  const generation with_graphs = generate(*b, kPrompts, 10, 64, greedy);
  cuda.set_graphs_enabled(false);
  const generation eager = generate(*b, kPrompts, 10, 64, greedy, nullptr, 200);
  for (size_t s = 0; s < kPrompts.size(); ++s) {
    REQUIRE(with_graphs.tokens[s] == eager.tokens[s]);
    for (size_t k = 0; k < 10; ++k)
      REQUIRE(max_rel_error(with_graphs.logits[s][k], eager.logits[s][k]) < 1e-2);
  }
  cuda_backend_options bad = fp8_options("bfloat16");
  bad.quantization = "int4";
  REQUIRE_THROWS_AS(make_cuda_backend(dir.path(), bad), model_error);
}

// Kernel tests against CPU references: embedding gather, fused add + RMSNorm, rotary (with
// and without Qwen3 qk-norm), paged KV write, SiLU-and-mul, and cuBLASLt GEMMs. Each sweeps
// odd and real shapes over bf16, fp16 and fp32.
#include "gpu/embedding.hpp"
#include "gpu/gemm.hpp"
#include "gpu/kv_cache_write.hpp"
#include "gpu/rmsnorm.hpp"
#include "gpu/rotary.hpp"
#include "gpu/silu_and_mul.hpp"
#include "tests/gpu/gpu_test_util.hpp"

#include <algorithm>
#include <numeric>

using namespace actorserve;
using namespace actorserve::gpu;
using namespace actorserve::gpu::testing;

namespace {
const dtype kTypes[] = {dtype::bf16, dtype::f16, dtype::f32};
}

TEST_CASE("embedding gathers rows and zeroes out-of-range ids", "[gpu][embedding]") {
  require_gpu();
  std::mt19937 rng(1);
  for (dtype t : kTypes)
    for (int64_t hidden : {1, 7, 64, 129, 4096})
      for (int64_t rows : {1, 5, 33}) {
        const int64_t vocab = 37;
        std::vector<float> table = random_values(rng, size_t(vocab * hidden));
        device_buffer d_table = upload(t, table);
        std::vector<int32_t> ids(static_cast<size_t>(rows));
        for (auto& id : ids)
          id = int32_t(rng() % vocab);
        ids[0] = int32_t(vocab); // out of range: zero row
        if (rows > 1)
          ids[1] = -3;
        device_buffer d_ids = upload_raw(ids);
        device_buffer d_out(size_t(rows * hidden) * dtype_size(t));
        d_out.poison();
        launch_embedding(d_out.get(), d_table.get(), d_ids.as<int32_t>(), rows, hidden, vocab, t, nullptr);
        const std::vector<float> out = download(t, d_out, size_t(rows * hidden));
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t h = 0; h < hidden; ++h) {
            const int32_t id = ids[size_t(r)];
            const float want = (id < 0 || id >= vocab) ? 0.0f : table[size_t(id * hidden + h)];
            INFO(name_of(t) << " hidden " << hidden << " row " << r);
            REQUIRE(out[size_t(r * hidden + h)] == want);
          }
      }
}

TEST_CASE("fused add + RMSNorm matches the reference", "[gpu][rmsnorm]") {
  require_gpu();
  std::mt19937 rng(2);
  for (dtype t : kTypes)
    for (int64_t hidden : {1, 7, 100, 4096, 5120, 8193})
      for (int64_t rows : {1, 3, 17})
        for (bool with_delta : {false, true}) {
          const size_t n = size_t(rows * hidden);
          std::vector<float> res = random_values(rng, n, 2.0f), delta = random_values(rng, n),
                             weight = random_values(rng, size_t(hidden));
          device_buffer d_res = upload(t, res), d_delta = upload(t, delta), d_w = upload(t, weight);
          device_buffer d_out(n * dtype_size(t));
          d_out.poison();
          const float eps = 1e-5f;
          launch_fused_add_rmsnorm(d_res.get(), with_delta ? d_delta.get() : nullptr, d_w.get(), d_out.get(), rows,
                                   hidden, eps, t, nullptr);
          const std::vector<float> new_res = download(t, d_res, n), out = download(t, d_out, n);
          std::vector<double> ref(n);
          for (int64_t r = 0; r < rows; ++r) {
            double sum_sq = 0;
            std::vector<float> summed(static_cast<size_t>(hidden));
            for (int64_t h = 0; h < hidden; ++h) {
              const size_t i = size_t(r * hidden + h);
              summed[size_t(h)] = with_delta ? round_as(t, res[i] + delta[i]) : res[i];
              INFO(name_of(t) << " hidden " << hidden << " residual element " << i);
              REQUIRE(new_res[i] == summed[size_t(h)]); // the residual is exactly the rounded sum
              sum_sq += double(summed[size_t(h)]) * summed[size_t(h)];
            }
            const double inv = 1.0 / std::sqrt(sum_sq / double(hidden) + eps);
            for (int64_t h = 0; h < hidden; ++h)
              ref[size_t(r * hidden + h)] = double(weight[size_t(h)]) * summed[size_t(h)] * inv;
          }
          INFO(name_of(t) << " rows " << rows << " hidden " << hidden << " delta " << with_delta);
          REQUIRE(rel_l2(out, ref) < tolerance(t));
        }
}

TEST_CASE("rotary embedding (neox) with and without qk-norm, with the fused KV cache store", "[gpu][rotary]") {
  require_gpu();
  std::mt19937 rng(3);
  for (dtype t : kTypes)
    for (int32_t head_dim : {16, 64, 128})
      for (bool qk_norm : {false, true}) {
        const int32_t q_heads = 6, kv_heads = 2, tokens = 5;
        const int64_t stride = int64_t(q_heads + 2 * kv_heads) * head_dim + 3; // odd padding
        std::vector<float> qkv = random_values(rng, size_t(tokens * stride));
        std::vector<float> qn = random_values(rng, size_t(head_dim)), kn = random_values(rng, size_t(head_dim));
        std::vector<int32_t> pos = {0, 1, 17, 4095, 100000};
        std::vector<float> inv_freq(static_cast<size_t>(head_dim / 2));
        for (int32_t i = 0; i < head_dim / 2; ++i)
          inv_freq[size_t(i)] = 1.0f / std::pow(500000.0f, float(2 * i) / float(head_dim));
        device_buffer d_qkv = upload(t, qkv), d_pos = upload_raw(pos), d_freq = upload_raw(inv_freq);
        device_buffer d_qn = upload(t, qn), d_kn = upload(t, kn);
        rotary_args a;
        a.qkv = d_qkv.get();
        a.row_stride = stride;
        a.positions = d_pos.as<int32_t>();
        a.inv_freq = d_freq.as<float>();
        a.q_norm_weight = qk_norm ? d_qn.get() : nullptr;
        a.k_norm_weight = qk_norm ? d_kn.get() : nullptr;
        a.norm_eps = 1e-6f;
        a.num_tokens = tokens;
        a.num_q_heads = q_heads;
        a.num_kv_heads = kv_heads;
        a.head_dim = head_dim;
        // The fused cache store: token t to slot slots[t] (token 2 is padding).
        const std::vector<int32_t> slots = {3, 0, -1, 6, 1};
        const int64_t kv_row = int64_t(kv_heads) * head_dim, num_slots = 8;
        std::vector<float> cache_init(size_t(num_slots * kv_row), 0.25f);
        device_buffer d_slots = upload_raw(slots), d_kc = upload(t, cache_init), d_vc = upload(t, cache_init);
        a.key_cache = d_kc.get();
        a.value_cache = d_vc.get();
        a.slot_mapping = d_slots.as<int32_t>();
        launch_rotary(a, t, nullptr);
        const std::vector<float> out = download(t, d_qkv, qkv.size());
        const std::vector<float> kc = download(t, d_kc, cache_init.size()), vc = download(t, d_vc, cache_init.size());
        std::vector<bool> written(size_t(num_slots), false);
        for (int32_t tok = 0; tok < tokens; ++tok) {
          if (slots[size_t(tok)] < 0)
            continue;
          written[size_t(slots[size_t(tok)])] = true;
          for (int64_t i = 0; i < kv_row; ++i) {
            const size_t src = size_t(tok * stride + int64_t(q_heads) * head_dim + i);
            INFO(name_of(t) << " head_dim " << head_dim << " token " << tok << " element " << i);
            REQUIRE(kc[size_t(slots[size_t(tok)] * kv_row + i)] == out[src]);                  // rotated k
            REQUIRE(vc[size_t(slots[size_t(tok)] * kv_row + i)] == out[src + size_t(kv_row)]); // v as is
          }
        }
        for (int64_t sl = 0; sl < num_slots; ++sl)
          if (!written[size_t(sl)])
            for (int64_t i = 0; i < kv_row; ++i) {
              REQUIRE(kc[size_t(sl * kv_row + i)] == 0.25f);
              REQUIRE(vc[size_t(sl * kv_row + i)] == 0.25f);
            }
        std::vector<float> got;
        std::vector<double> ref;
        const int half = head_dim / 2;
        for (int32_t tok = 0; tok < tokens; ++tok)
          for (int32_t h = 0; h < q_heads + 2 * kv_heads; ++h) {
            const size_t base = size_t(tok * stride + h * head_dim);
            if (h >= q_heads + kv_heads) { // v heads untouched
              for (int32_t d = 0; d < head_dim; ++d)
                REQUIRE(out[base + size_t(d)] == qkv[base + size_t(d)]);
              continue;
            }
            std::vector<double> x(static_cast<size_t>(head_dim));
            for (int32_t d = 0; d < head_dim; ++d)
              x[size_t(d)] = qkv[base + size_t(d)];
            if (qk_norm) {
              double ss = 0;
              for (double v : x)
                ss += v * v;
              const double inv = 1.0 / std::sqrt(ss / head_dim + 1e-6);
              const auto& w = h < q_heads ? qn : kn;
              for (int32_t d = 0; d < head_dim; ++d)
                x[size_t(d)] = x[size_t(d)] * inv * w[size_t(d)];
            }
            for (int32_t i = 0; i < half; ++i) {
              const double angle = double(float(pos[size_t(tok)]) * inv_freq[size_t(i)]);
              const double c = std::cos(angle), s = std::sin(angle);
              ref.push_back(x[size_t(i)] * c - x[size_t(i + half)] * s);
              got.push_back(out[base + size_t(i)]);
              ref.push_back(x[size_t(i + half)] * c + x[size_t(i)] * s);
              got.push_back(out[base + size_t(i + half)]);
            }
          }
        INFO(name_of(t) << " head_dim " << head_dim << " qk_norm " << qk_norm);
        REQUIRE(rel_l2(got, ref) < 2 * tolerance(t));
      }
}

TEST_CASE("KV cache write places each token in its slot and skips negative slots", "[gpu][kv_cache]") {
  require_gpu();
  std::mt19937 rng(4);
  for (dtype t : kTypes)
    for (int64_t kv_size : {8, 24, 1024, 13}) {
      const int64_t tokens = 9, num_slots = 40, stride = 3 * kv_size + 8;
      std::vector<float> src = random_values(rng, size_t(tokens * stride));
      std::vector<int32_t> slot(static_cast<size_t>(num_slots));
      std::iota(slot.begin(), slot.end(), 0);
      std::shuffle(slot.begin(), slot.end(), rng);
      slot.resize(size_t(tokens));
      slot[4] = -1;
      device_buffer d_src = upload(t, src), d_slot = upload_raw(slot);
      std::vector<float> zeros(size_t(num_slots * kv_size), 0.0f);
      device_buffer d_k = upload(t, zeros), d_v = upload(t, zeros);
      const size_t elem = dtype_size(t);
      launch_kv_cache_write(d_src.as<char>() + size_t(kv_size) * elem, d_src.as<char>() + size_t(2 * kv_size) * elem,
                            stride, d_k.get(), d_v.get(), d_slot.as<int32_t>(), tokens, kv_size, t, nullptr);
      const std::vector<float> k = download(t, d_k, zeros.size()), v = download(t, d_v, zeros.size());
      std::vector<float> want_k = zeros, want_v = zeros;
      for (int64_t tok = 0; tok < tokens; ++tok) {
        if (slot[size_t(tok)] < 0)
          continue;
        for (int64_t i = 0; i < kv_size; ++i) {
          want_k[size_t(slot[size_t(tok)] * kv_size + i)] = src[size_t(tok * stride + kv_size + i)];
          want_v[size_t(slot[size_t(tok)] * kv_size + i)] = src[size_t(tok * stride + 2 * kv_size + i)];
        }
      }
      INFO(name_of(t) << " kv_size " << kv_size);
      REQUIRE(k == want_k);
      REQUIRE(v == want_v);
    }
}

TEST_CASE("SiLU-and-mul matches the reference", "[gpu][silu]") {
  require_gpu();
  std::mt19937 rng(5);
  for (dtype t : kTypes)
    for (int64_t width : {1, 11, 1000, 14336})
      for (int64_t rows : {1, 3}) {
        std::vector<float> in = random_values(rng, size_t(rows * 2 * width), 3.0f);
        device_buffer d_in = upload(t, in), d_out(size_t(rows * width) * dtype_size(t));
        d_out.poison();
        launch_silu_and_mul(d_out.get(), d_in.get(), rows, width, t, nullptr);
        const std::vector<float> out = download(t, d_out, size_t(rows * width));
        std::vector<double> ref(static_cast<size_t>(rows * width));
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t i = 0; i < width; ++i) {
            const double g = in[size_t(r * 2 * width + i)], u = in[size_t(r * 2 * width + width + i)];
            ref[size_t(r * width + i)] = g / (1.0 + std::exp(-g)) * u;
          }
        INFO(name_of(t) << " width " << width);
        REQUIRE(rel_l2(out, ref) < tolerance(t));
      }
}

TEST_CASE("cuBLASLt GEMM y = x w^T (+ bias) matches the reference", "[gpu][gemm]") {
  require_gpu();
  std::mt19937 rng(6);
  gemm_runner gemm(size_t(4) << 20);
  for (dtype t : kTypes)
    for (int64_t m : {1, 3, 17, 64})
      for (int64_t n : {8, 64, 264})
        for (int64_t k : {8, 64, 304})
          for (bool bias : {false, true}) {
            std::vector<float> x = random_values(rng, size_t(m * k)), w = random_values(rng, size_t(n * k)),
                               b = random_values(rng, size_t(n));
            device_buffer d_x = upload(t, x), d_w = upload(t, w), d_b = upload(t, b);
            device_buffer d_y(size_t(m * n) * dtype_size(t));
            d_y.poison();
            gemm.run(d_y.get(), d_x.get(), d_w.get(), bias ? d_b.get() : nullptr, m, n, k, t, nullptr);
            const std::vector<float> y = download(t, d_y, size_t(m * n));
            std::vector<double> ref(static_cast<size_t>(m * n));
            for (int64_t i = 0; i < m; ++i)
              for (int64_t j = 0; j < n; ++j) {
                double s = bias ? b[size_t(j)] : 0.0;
                for (int64_t e = 0; e < k; ++e)
                  s += double(x[size_t(i * k + e)]) * w[size_t(j * k + e)];
                ref[size_t(i * n + j)] = s;
              }
            INFO(name_of(t) << " m " << m << " n " << n << " k " << k << " bias " << bias);
            REQUIRE(rel_l2(y, ref) < tolerance(t));
          }
  // Each shape was planned once and reused.
  REQUIRE(gemm.num_plans() == 3 * 4 * 3 * 3 * 2);
}

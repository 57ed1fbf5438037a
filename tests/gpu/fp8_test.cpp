// Weight-only FP8 kernels (gpu/fp8_linear.cu): the device quantization against the CPU reference
// (model/fp8.hpp) byte for byte, the dequantization exactly, and the small-batch fp8 GEMM against an
// fp64 reference over the dequantized weights.
#include "gpu/fp8_linear.hpp"
#include "model/fp8.hpp"
#include "tests/gpu/gpu_test_util.hpp"

#include <cstring>

using namespace actorserve;
using namespace actorserve::gpu;
using namespace actorserve::gpu::testing;

TEST_CASE("device E4M3 row quantization matches quantize_rows_e4m3 byte for byte", "[gpu][fp8]") {
  require_gpu();
  std::mt19937 rng(5);
  struct shape {
    int64_t rows, cols;
  };
  for (const shape sh : {shape{1, 1}, shape{3, 7}, shape{5, 33}, shape{17, 1000}, shape{4, 4096}, shape{2, 14336}}) {
    std::vector<float> w = random_values(rng, size_t(sh.rows * sh.cols), 0.05f);
    // Row 0 spans many binades (E4M3 subnormals and values that round to zero); row 1 (if any) is
    // all zero; row 2 has max 448 exactly (scale 1) and ties between E4M3 values.
    for (int64_t c = 0; c < sh.cols; ++c)
      w[size_t(c)] = std::ldexp(w[size_t(c)], int(c % 24) - 12);
    if (sh.rows > 1)
      std::fill(w.begin() + sh.cols, w.begin() + 2 * sh.cols, 0.0f);
    if (sh.rows > 2) {
      const float special[] = {448.0f, 1.0625f, -17.0f, 0.0048828125f, 3.0f * 0.0009765625f, 1.1875f, -464.0f / 2};
      for (int64_t c = 0; c < sh.cols; ++c)
        w[size_t(2 * sh.cols + c)] = special[c % 7] * (c % 5 == 4 ? 0.5f : 1.0f);
      w[size_t(2 * sh.cols)] = 448.0f;
    }
    std::vector<uint8_t> want_q(w.size());
    std::vector<float> want_s(size_t(sh.rows));
    quantize_rows_e4m3(w.data(), sh.rows, sh.cols, want_q.data(), want_s.data());

    device_buffer d_w = upload_raw(w), d_q(w.size()), d_s(size_t(sh.rows) * 4);
    launch_quantize_rows_e4m3(static_cast<uint8_t*>(d_q.get()), static_cast<float*>(d_s.get()),
                              static_cast<const float*>(d_w.get()), sh.rows, sh.cols, nullptr);
    const std::vector<uint8_t> got_q = download_raw<uint8_t>(d_q, w.size());
    const std::vector<float> got_s = download_raw<float>(d_s, size_t(sh.rows));
    INFO("rows " << sh.rows << " cols " << sh.cols);
    REQUIRE(std::memcmp(got_s.data(), want_s.data(), got_s.size() * 4) == 0);
    size_t mismatches = 0;
    for (size_t i = 0; i < w.size(); ++i)
      mismatches += got_q[i] != want_q[i];
    REQUIRE(mismatches == 0);
    if (sh.rows > 1)
      REQUIRE(want_s[1] == 1.0f);

    // Dequantized: e4m3 * scale as an fp32 product, rounded once to the dtype.
    for (dtype t : {dtype::f32, dtype::bf16, dtype::f16}) {
      device_buffer d_out(w.size() * dtype_size(t));
      launch_dequantize_rows_e4m3(d_out.get(), static_cast<const uint8_t*>(d_q.get()),
                                  static_cast<const float*>(d_s.get()), sh.rows, sh.cols, t, nullptr);
      const std::vector<float> got = download(t, d_out, w.size());
      size_t wrong = 0;
      for (int64_t r = 0; r < sh.rows; ++r)
        for (int64_t c = 0; c < sh.cols; ++c) {
          const size_t i = size_t(r * sh.cols + c);
          const float want = round_as(t, e4m3_to_f32(want_q[i]) * want_s[size_t(r)]);
          wrong += std::memcmp(&got[i], &want, 4) != 0;
        }
      INFO(name_of(t));
      REQUIRE(wrong == 0);
    }
  }
}

TEST_CASE("small-batch fp8 linear layers match the reference on dequantized weights", "[gpu][fp8]") {
  require_gpu();
  std::mt19937 rng(23);
  struct shape {
    int64_t n, k;
  };
  const std::vector<shape> shapes = {{16, 32}, {48, 96}, {32, 160}, {1040, 608}, {6144, 4096}, {4096, 14336}};
  for (dtype t : {dtype::bf16, dtype::f16})
    for (const shape& sh : shapes)
      for (int64_t m : {1, 2, 3, 5, 7, 8, 9, 11, 13, 15, 16})
        for (bool with_bias : {false, true}) {
          const bool big = sh.n * sh.k > 4'000'000;
          if (big && (with_bias || (m != 1 && m != 9 && m != 16)))
            continue;
          std::vector<float> x = random_values(rng, size_t(m * sh.k));
          std::vector<float> w = random_values(rng, size_t(sh.n * sh.k), 0.05f);
          std::vector<float> bias = random_values(rng, size_t(sh.n));
          std::vector<uint8_t> q(w.size());
          std::vector<float> scales(size_t(sh.n));
          quantize_rows_e4m3(w.data(), sh.n, sh.k, q.data(), scales.data());
          device_buffer d_x = upload(t, x), d_b = upload(t, bias), d_q = upload_raw(q), d_s = upload_raw(scales);
          const int64_t rows_alloc = m + 1;
          device_buffer d_y(size_t(rows_alloc * sh.n) * dtype_size(t));
          d_y.poison();
          REQUIRE(small_gemm_fp8_supported(d_x.get(), d_q.get(), m, sh.n, sh.k, t));
          launch_small_gemm_fp8(d_y.get(), d_x.get(), static_cast<const uint8_t*>(d_q.get()),
                                static_cast<const float*>(d_s.get()), with_bias ? d_b.get() : nullptr, m, sh.n, sh.k,
                                t, nullptr);
          const std::vector<float> y = download(t, d_y, size_t(rows_alloc * sh.n));
          std::vector<float> got(y.begin(), y.begin() + ptrdiff_t(m * sh.n));
          std::vector<double> deq(w.size());
          for (int64_t f = 0; f < sh.n; ++f)
            for (int64_t i = 0; i < sh.k; ++i)
              deq[size_t(f * sh.k + i)] = double(e4m3_to_f32(q[size_t(f * sh.k + i)])) * scales[size_t(f)];
          std::vector<double> ref(got.size());
          for (int64_t r = 0; r < m; ++r)
            for (int64_t f = 0; f < sh.n; ++f) {
              double acc = with_bias ? double(bias[size_t(f)]) : 0.0;
              for (int64_t i = 0; i < sh.k; ++i)
                acc += double(x[size_t(r * sh.k + i)]) * deq[size_t(f * sh.k + i)];
              ref[size_t(r * sh.n + f)] = acc;
            }
          INFO(name_of(t) << " m " << m << " n " << sh.n << " k " << sh.k << " bias " << with_bias);
          REQUIRE(rel_l2(got, ref) < tolerance(t));
          for (int64_t f = 0; f < sh.n; ++f)
            REQUIRE(std::isnan(y[size_t(m * sh.n + f)]));
        }
}

TEST_CASE("small-batch fp8 linear layers refuse what they do not take", "[gpu][fp8]") {
  require_gpu();
  device_buffer d(size_t(1) << 16);
  CHECK_FALSE(small_gemm_fp8_supported(d.get(), d.get(), 17, 16, 32, dtype::bf16));
  CHECK_FALSE(small_gemm_fp8_supported(d.get(), d.get(), 1, 24, 32, dtype::bf16));
  CHECK_FALSE(small_gemm_fp8_supported(d.get(), d.get(), 1, 16, 48, dtype::bf16));
  CHECK_FALSE(small_gemm_fp8_supported(d.get(), d.get(), 1, 16, 32, dtype::f32));
  CHECK_FALSE(small_gemm_fp8_supported(d.get(), d.get(), 0, 16, 32, dtype::bf16));
  CHECK_THROWS_AS(launch_small_gemm_fp8(d.get(), d.get(), static_cast<const uint8_t*>(d.get()),
                                        static_cast<const float*>(d.get()), nullptr, 1, 24, 32, dtype::bf16, nullptr),
                  std::invalid_argument);
}

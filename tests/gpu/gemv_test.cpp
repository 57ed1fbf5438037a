// Small-batch linear layers (gpu/gemv.cu) against an fp64 reference: m = 1..16 rows, feature
// counts and K sizes of real layers and odd multiples of the tile, with and without bias, bf16
// and fp16. The output is poisoned first, so features or rows the kernel failed to write fail
// the test; rows past m must stay untouched.
#include "gpu/gemv.hpp"
#include "tests/gpu/gpu_test_util.hpp"

using namespace actorserve;
using namespace actorserve::gpu;
using namespace actorserve::gpu::testing;

TEST_CASE("small-batch linear layers match the reference", "[gpu][gemv]") {
  require_gpu();
  std::mt19937 rng(11);
  struct shape {
    int64_t n, k;
  };
  const std::vector<shape> shapes = {{16, 32}, {48, 96}, {6144, 4096}, {4096, 14336}, {1040, 608}};
  for (dtype t : {dtype::bf16, dtype::f16})
    for (const shape& sh : shapes)
      for (int64_t m : {1, 3, 8, 9, 16})
        for (bool with_bias : {false, true}) {
          const bool big = sh.n * sh.k > 4'000'000; // real layer shapes: a few row counts (CPU reference time)
          if (big && (with_bias || (m != 1 && m != 9)))
            continue;
          std::vector<float> x = random_values(rng, size_t(m * sh.k));
          std::vector<float> w = random_values(rng, size_t(sh.n * sh.k), 0.05f);
          std::vector<float> bias = random_values(rng, size_t(sh.n));
          device_buffer d_x = upload(t, x), d_w = upload(t, w), d_b = upload(t, bias);
          const int64_t rows_alloc = m + 1; // one row past m: must not be written
          device_buffer d_y(size_t(rows_alloc * sh.n) * dtype_size(t));
          d_y.poison();
          REQUIRE(small_gemm_supported(d_x.get(), d_w.get(), m, sh.n, sh.k, t));
          launch_small_gemm(d_y.get(), d_x.get(), d_w.get(), with_bias ? d_b.get() : nullptr, m, sh.n, sh.k, t,
                            nullptr);
          const std::vector<float> y = download(t, d_y, size_t(rows_alloc * sh.n));
          std::vector<float> got(y.begin(), y.begin() + ptrdiff_t(m * sh.n));
          std::vector<double> ref(got.size());
          for (int64_t r = 0; r < m; ++r)
            for (int64_t f = 0; f < sh.n; ++f) {
              double acc = with_bias ? double(bias[size_t(f)]) : 0.0;
              for (int64_t i = 0; i < sh.k; ++i)
                acc += double(x[size_t(r * sh.k + i)]) * double(w[size_t(f * sh.k + i)]);
              ref[size_t(r * sh.n + f)] = acc;
            }
          INFO(name_of(t) << " m " << m << " n " << sh.n << " k " << sh.k << " bias " << with_bias);
          REQUIRE(rel_l2(got, ref) < tolerance(t));
          for (int64_t f = 0; f < sh.n; ++f) // the poison pattern (NaN) survives past row m
            REQUIRE(std::isnan(y[size_t(m * sh.n + f)]));
        }
}

TEST_CASE("small-batch linear layers refuse what they do not take", "[gpu][gemv]") {
  require_gpu();
  device_buffer d(size_t(1) << 16);
  CHECK_FALSE(small_gemm_supported(d.get(), d.get(), 17, 16, 32, dtype::bf16));
  CHECK_FALSE(small_gemm_supported(d.get(), d.get(), 1, 24, 32, dtype::bf16));
  CHECK_FALSE(small_gemm_supported(d.get(), d.get(), 1, 16, 40, dtype::bf16));
  CHECK_FALSE(small_gemm_supported(d.get(), d.get(), 1, 16, 32, dtype::f32));
  CHECK_FALSE(small_gemm_supported(d.get(), d.get(), 0, 16, 32, dtype::bf16));
  CHECK_THROWS_AS(launch_small_gemm(d.get(), d.get(), d.get(), nullptr, 1, 24, 32, dtype::bf16, nullptr),
                  std::invalid_argument);
}

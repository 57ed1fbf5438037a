// Programmatic dependent launch (gpu/pdl.cuh) and the small GEMM with the fused add + RMSNorm in
// front (launch_small_gemm_norm). The norm variant is checked bit for bit against the two launches
// it replaces (launch_fused_add_rmsnorm, then launch_small_gemm), and against an fp64 reference,
// over odd and real shapes, with PDL on and off. The chain test runs a decode-like chain of
// dependent kernels (norm-GEMM -> GEMM -> norm-GEMM -> GEMM per layer, each reading what the one
// before wrote, residuals alternating between two buffers) on a stream with PDL off, with PDL on,
// and replayed from a CUDA graph captured with PDL: a kernel that read its input before the kernel
// before it finished writing it would give different bits.
#include "gpu/gemv.hpp"
#include "gpu/pdl.hpp"
#include "gpu/rmsnorm.hpp"
#include "tests/gpu/gpu_test_util.hpp"

#include <cuda_runtime.h>

using namespace actorserve;
using namespace actorserve::gpu;
using namespace actorserve::gpu::testing;

namespace {

/// A non-default stream (PDL does not apply to the legacy default stream).
struct test_stream {
  cudaStream_t s = nullptr;
  test_stream() { ACTORSERVE_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)); }
  ~test_stream() { cudaStreamDestroy(s); }
  test_stream(const test_stream&) = delete;
  test_stream& operator=(const test_stream&) = delete;
};

/// Restores the process-wide PDL switch at the end of a test.
struct pdl_guard {
  bool was = pdl_enabled();
  ~pdl_guard() { set_pdl_enabled(was); }
};

std::vector<uint16_t> bits_of(const device_buffer& b, size_t n) { return download_raw<uint16_t>(b, n); }

void copy_buffer(const device_buffer& dst, const device_buffer& src) {
  ACTORSERVE_CUDA_CHECK(cudaMemcpy(dst.get(), src.get(), src.bytes(), cudaMemcpyDeviceToDevice));
}

} // namespace

TEST_CASE("small-batch linear layer with RMSNorm in front equals the two launches and the reference",
          "[gpu][gemv][pdl]") {
  require_gpu();
  pdl_guard guard;
  test_stream stream;
  std::mt19937 rng(17);
  struct shape {
    int64_t n, k;
  };
  const std::vector<shape> shapes = {{16, 32}, {48, 96}, {1040, 608}, {272, 1504}, {64, 4096}, {6144, 4096}};
  const float eps = 1e-5f;
  for (bool pdl : {true, false}) {
    set_pdl_enabled(pdl);
    for (dtype t : {dtype::bf16, dtype::f16})
      for (const shape& sh : shapes)
        for (int64_t m : {1, 2})
          for (bool with_delta : {false, true})
            for (bool with_bias : {false, true}) {
              const bool big = sh.n * sh.k > 4'000'000;
              if (big && (with_bias || !with_delta))
                continue; // CPU reference time
              const size_t rows = size_t(m * sh.k);
              std::vector<float> res = random_values(rng, rows, 2.0f), delta = random_values(rng, rows);
              std::vector<float> norm_w = random_values(rng, size_t(sh.k));
              std::vector<float> w = random_values(rng, size_t(sh.n * sh.k), 0.05f);
              std::vector<float> bias = random_values(rng, size_t(sh.n));
              device_buffer d_res = upload(t, res), d_delta = upload(t, delta), d_norm = upload(t, norm_w),
                            d_w = upload(t, w), d_b = upload(t, bias);
              const size_t elem = dtype_size(t);
              device_buffer d_res_out(rows * elem), d_res2(rows * elem), d_x(rows * elem);
              const int64_t rows_alloc = m + 1; // one row past m: must not be written
              device_buffer d_y(size_t(rows_alloc * sh.n) * elem), d_y2(size_t(m * sh.n) * elem);
              d_y.poison();
              d_res_out.poison();
              copy_buffer(d_res2, d_res);
              const void* dl = with_delta ? d_delta.get() : nullptr;
              const void* b = with_bias ? d_b.get() : nullptr;
              INFO(name_of(t) << " m " << m << " n " << sh.n << " k " << sh.k << " delta " << with_delta << " bias "
                              << with_bias << " pdl " << pdl);
              REQUIRE(small_gemm_norm_supported(d_res.get(), d_w.get(), m, sh.n, sh.k, t));
              launch_small_gemm_norm(d_y.get(), d_res.get(), dl, d_norm.get(), d_res_out.get(), eps, d_w.get(), b, m,
                                     sh.n, sh.k, t, stream.s);
              // The two launches it replaces (the norm updates its residual in place).
              launch_fused_add_rmsnorm(d_res2.get(), dl, d_norm.get(), d_x.get(), m, sh.k, eps, t, stream.s);
              launch_small_gemm(d_y2.get(), d_x.get(), d_w.get(), b, m, sh.n, sh.k, t, stream.s);
              ACTORSERVE_CUDA_CHECK(cudaStreamSynchronize(stream.s));
              REQUIRE(bits_of(d_y, size_t(m * sh.n)) == bits_of(d_y2, size_t(m * sh.n)));
              REQUIRE(bits_of(d_res_out, rows) == bits_of(d_res2, rows));
              const std::vector<float> res_in_after = download(t, d_res, rows);
              REQUIRE(res_in_after == res); // the input residual is only read

              // fp64 reference of the whole thing.
              std::vector<double> ref(size_t(m * sh.n));
              for (int64_t r = 0; r < m; ++r) {
                std::vector<double> v(size_t(sh.k)), xn(size_t(sh.k));
                double sum_sq = 0;
                for (int64_t i = 0; i < sh.k; ++i) {
                  const size_t at = size_t(r * sh.k + i);
                  v[size_t(i)] = with_delta ? round_as(t, res[at] + delta[at]) : res[at];
                  sum_sq += v[size_t(i)] * v[size_t(i)];
                }
                const double inv = 1.0 / std::sqrt(sum_sq / double(sh.k) + eps);
                for (int64_t i = 0; i < sh.k; ++i)
                  xn[size_t(i)] = round_as(t, float(norm_w[size_t(i)] * round_as(t, float(v[size_t(i)] * inv))));
                for (int64_t f = 0; f < sh.n; ++f) {
                  double acc = with_bias ? double(bias[size_t(f)]) : 0.0;
                  for (int64_t i = 0; i < sh.k; ++i)
                    acc += xn[size_t(i)] * double(w[size_t(f * sh.k + i)]);
                  ref[size_t(r * sh.n + f)] = acc;
                }
              }
              const std::vector<float> y = download(t, d_y, size_t(rows_alloc * sh.n));
              const std::vector<float> got(y.begin(), y.begin() + ptrdiff_t(m * sh.n));
              REQUIRE(rel_l2(got, ref) < tolerance(t));
              for (int64_t f = 0; f < sh.n; ++f) // the poison pattern (NaN) survives past row m
                REQUIRE(std::isnan(y[size_t(m * sh.n + f)]));
            }
  }
}

TEST_CASE("small-batch RMSNorm linear layer refuses what it does not take", "[gpu][gemv][pdl]") {
  require_gpu();
  device_buffer d(size_t(1) << 16), e(size_t(1) << 16);
  CHECK(small_gemm_norm_supported(d.get(), d.get(), 2, 16, 4096, dtype::bf16));
  CHECK_FALSE(small_gemm_norm_supported(d.get(), d.get(), 3, 16, 32, dtype::bf16));   // m > 2
  CHECK_FALSE(small_gemm_norm_supported(d.get(), d.get(), 1, 16, 4128, dtype::bf16)); // k > 4096
  CHECK_FALSE(small_gemm_norm_supported(d.get(), d.get(), 1, 16, 32, dtype::f32));
  CHECK_FALSE(small_gemm_norm_supported(d.get(), d.get(), 1, 24, 32, dtype::bf16));
  CHECK_THROWS_AS(launch_small_gemm_norm(d.get(), d.get(), nullptr, d.get(), e.get(), 1e-5f, d.get(), nullptr, 3, 16,
                                         32, dtype::bf16, nullptr),
                  std::invalid_argument);
  // The output residual must be another buffer than the input one.
  CHECK_THROWS_AS(launch_small_gemm_norm(d.get(), e.get(), nullptr, d.get(), e.get(), 1e-5f, d.get(), nullptr, 1, 16,
                                         32, dtype::bf16, nullptr),
                  std::invalid_argument);
}

TEST_CASE("chains of dependent kernels give the same bits with and without PDL and from a graph", "[gpu][pdl]") {
  require_gpu();
  pdl_guard guard;
  test_stream stream;
  std::mt19937 rng(23);
  const int64_t hidden = 1024, inter = 1504; // inter: not a multiple of the 256-wide round
  const int layers = 12;
  const float eps = 1e-5f;
  for (dtype t : {dtype::bf16, dtype::f16})
    for (int64_t m : {1, 2}) {
      std::vector<float> res0 = random_values(rng, size_t(m * hidden), 1.0f);
      std::vector<float> norm1 = random_values(rng, size_t(hidden), 1.0f), norm2 = random_values(rng, size_t(hidden));
      std::vector<float> w1 = random_values(rng, size_t(inter * hidden), 0.03f);
      std::vector<float> w2 = random_values(rng, size_t(hidden * inter), 0.03f);
      std::vector<float> w3 = random_values(rng, size_t(inter * hidden), 0.03f);
      std::vector<float> w4 = random_values(rng, size_t(hidden * inter), 0.03f);
      device_buffer d_res0 = upload(t, res0), d_n1 = upload(t, norm1), d_n2 = upload(t, norm2), d_w1 = upload(t, w1),
                    d_w2 = upload(t, w2), d_w3 = upload(t, w3), d_w4 = upload(t, w4);
      const size_t elem = dtype_size(t);
      device_buffer d_res_a(size_t(m * hidden) * elem), d_res_b(size_t(m * hidden) * elem),
          d_x(size_t(m * hidden) * elem), d_mid(size_t(m * inter) * elem), d_y(size_t(m * hidden) * elem);
      // Per layer: mid = W1 norm1(res += y); y = W2 mid; mid = W3 norm2(res += y); y = W4 mid.
      auto fused = [&] {
        ACTORSERVE_CUDA_CHECK(
            cudaMemcpyAsync(d_res_a.get(), d_res0.get(), d_res0.bytes(), cudaMemcpyDeviceToDevice, stream.s));
        for (int l = 0; l < layers; ++l) {
          launch_small_gemm_norm(d_mid.get(), d_res_a.get(), l == 0 ? nullptr : d_y.get(), d_n1.get(), d_res_b.get(),
                                 eps, d_w1.get(), nullptr, m, inter, hidden, t, stream.s);
          launch_small_gemm(d_y.get(), d_mid.get(), d_w2.get(), nullptr, m, hidden, inter, t, stream.s);
          launch_small_gemm_norm(d_mid.get(), d_res_b.get(), d_y.get(), d_n2.get(), d_res_a.get(), eps, d_w3.get(),
                                 nullptr, m, inter, hidden, t, stream.s);
          launch_small_gemm(d_y.get(), d_mid.get(), d_w4.get(), nullptr, m, hidden, inter, t, stream.s);
        }
      };
      auto separate = [&] { // the same with separate norm launches, the residual updated in place
        ACTORSERVE_CUDA_CHECK(
            cudaMemcpyAsync(d_res_a.get(), d_res0.get(), d_res0.bytes(), cudaMemcpyDeviceToDevice, stream.s));
        for (int l = 0; l < layers; ++l) {
          launch_fused_add_rmsnorm(d_res_a.get(), l == 0 ? nullptr : d_y.get(), d_n1.get(), d_x.get(), m, hidden, eps,
                                   t, stream.s);
          launch_small_gemm(d_mid.get(), d_x.get(), d_w1.get(), nullptr, m, inter, hidden, t, stream.s);
          launch_small_gemm(d_y.get(), d_mid.get(), d_w2.get(), nullptr, m, hidden, inter, t, stream.s);
          launch_fused_add_rmsnorm(d_res_a.get(), d_y.get(), d_n2.get(), d_x.get(), m, hidden, eps, t, stream.s);
          launch_small_gemm(d_mid.get(), d_x.get(), d_w3.get(), nullptr, m, inter, hidden, t, stream.s);
          launch_small_gemm(d_y.get(), d_mid.get(), d_w4.get(), nullptr, m, hidden, inter, t, stream.s);
        }
      };
      auto result = [&] { // the residual after the last layer, then its output
        ACTORSERVE_CUDA_CHECK(cudaStreamSynchronize(stream.s));
        std::vector<uint16_t> bits = bits_of(d_res_a, size_t(m * hidden));
        const std::vector<uint16_t> y = bits_of(d_y, size_t(m * hidden));
        bits.insert(bits.end(), y.begin(), y.end());
        return bits;
      };
      auto clear = [&] {
        d_res_a.poison();
        d_res_b.poison();
        d_x.poison();
        d_mid.poison();
        d_y.poison();
      };
      INFO(name_of(t) << " m " << m);
      set_pdl_enabled(false);
      clear();
      separate();
      const std::vector<uint16_t> plain = result();
      for (float v : download(t, d_y, size_t(m * hidden)))
        REQUIRE(std::isfinite(v));
      clear();
      fused();
      REQUIRE(result() == plain);

      set_pdl_enabled(true);
      for (int rep = 0; rep < 3; ++rep) {
        clear();
        separate();
        REQUIRE(result() == plain);
        clear();
        fused();
        REQUIRE(result() == plain);
      }

      for (bool with_norm_gemm : {true, false}) {
        cudaGraph_t graph = nullptr;
        cudaGraphExec_t exec = nullptr;
        ACTORSERVE_CUDA_CHECK(cudaStreamBeginCapture(stream.s, cudaStreamCaptureModeThreadLocal));
        if (with_norm_gemm)
          fused();
        else
          separate();
        ACTORSERVE_CUDA_CHECK(cudaStreamEndCapture(stream.s, &graph));
        ACTORSERVE_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
        for (int rep = 0; rep < 3; ++rep) {
          clear();
          ACTORSERVE_CUDA_CHECK(cudaGraphLaunch(exec, stream.s));
          REQUIRE(result() == plain);
        }
        cudaGraphExecDestroy(exec);
        cudaGraphDestroy(graph);
      }
    }
}

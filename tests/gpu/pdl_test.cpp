// Programmatic dependent launch (gpu/pdl.cuh): a decode-like chain of dependent kernels (norm ->
// GEMM -> GEMM -> norm -> GEMM -> GEMM per layer, each reading what the one before wrote) runs on a
// stream with PDL off, with PDL on, and replayed from a CUDA graph captured with PDL. A kernel that
// read its input before the kernel before it finished writing it, or wrote before the kernel
// before it finished reading, would give different bits.
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

} // namespace

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
      device_buffer d_res_a(size_t(m * hidden) * elem), d_x(size_t(m * hidden) * elem), d_mid(size_t(m * inter) * elem),
          d_y(size_t(m * hidden) * elem);
      // Per layer: mid = W1 norm1(res += y); y = W2 mid; mid = W3 norm2(res += y); y = W4 mid.
      auto chain = [&] {
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
        d_x.poison();
        d_mid.poison();
        d_y.poison();
      };
      INFO(name_of(t) << " m " << m);
      set_pdl_enabled(false);
      clear();
      chain();
      const std::vector<uint16_t> plain = result();
      for (float v : download(t, d_y, size_t(m * hidden)))
        REQUIRE(std::isfinite(v));

      set_pdl_enabled(true);
      for (int rep = 0; rep < 3; ++rep) {
        clear();
        chain();
        REQUIRE(result() == plain);
      }

      cudaGraph_t graph = nullptr;
      cudaGraphExec_t exec = nullptr;
      ACTORSERVE_CUDA_CHECK(cudaStreamBeginCapture(stream.s, cudaStreamCaptureModeThreadLocal));
      chain();
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

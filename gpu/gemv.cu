// Small-batch linear layers on tensor cores (see gemv.hpp). One block of eight warps per 16 output
// features; the warps split K (warp w takes the 32-wide K chunks w, w + 8, ...), each keeps a 16 x
// (8 or 16) accumulator of mma.sync m16n8k16 with the weight rows as A and the activations as B,
// and the eight partial sums meet once in shared memory.
//
// Fragments come straight from global memory, 16 bytes a load: inside each 32-wide K chunk the
// order of k is permuted so that lane (g, t4) reads the contiguous bytes [8 t4, 8 t4 + 8) of its
// rows, for the weights and the activations alike (a dot product does not depend on the order of
// its terms). Eight chunks' loads are issued before the first mma; the weights are streaming loads.
//
// Programmatic dependent launch (pdl.cuh): the weights never depend on the kernel before, so each
// block issues its first round of weight loads, lets the next kernel launch, and only then waits
// for the previous kernel's output.
#include "gpu/cuda_check.hpp"
#include "gpu/device_math.cuh"
#include "gpu/gemv.hpp"
#include "gpu/pdl.cuh"
#include "gpu/small_gemm_common.cuh"

#include <string>

namespace actorserve::gpu {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;
constexpr int kRows = 16;  // output features per block
constexpr int kUnroll = 8; // K chunks in flight per warp (8 KB of weights)

// Two blocks per multiprocessor: without the minimum, ptxas caps the kernel near 64 registers and
// interleaves loads with mmas, which leaves one chunk in flight per warp.
template <typename T, int MT>
__global__ void __launch_bounds__(kThreads, 2)
    small_gemm_kernel(T* __restrict__ y, const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                      int m, int n, int k) {
  __shared__ float partial[kWarps][MT * 8][kRows]; // [warp][x row][feature]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  const int n0 = blockIdx.x * kRows;
  const int chunks = k / 32;
  const T* w_lo = w + int64_t(n0 + g) * k + 8 * t4; // rows g and g + 8 of the block's features
  const T* w_hi = w_lo + int64_t(8) * k;

  // The weights do not depend on the kernel before: the first round's loads go out before the
  // dependency wait, so they overlap that kernel's tail.
  uint4 wa[kUnroll], wb[kUnroll];
  int c0 = warp;
  bool preloaded = c0 + (kUnroll - 1) * kWarps < chunks;
  if (preloaded) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      wa[u] = load_stream(w_lo + 32 * (c0 + u * kWarps));
      wb[u] = load_stream(w_hi + 32 * (c0 + u * kWarps));
    }
  }
  pdl_launch_dependents();
  pdl_wait();

  const T* x_row[MT];
  bool x_valid[MT];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    x_valid[mt] = 8 * mt + g < m;
    const int r = x_valid[mt] ? 8 * mt + g : 0;
    x_row[mt] = x + int64_t(r) * k + 8 * t4;
  }
  float acc[MT][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
    acc[mt][0] = acc[mt][1] = acc[mt][2] = acc[mt][3] = 0.0f;

  // One 32-wide chunk: k-step 0 uses words x, y of each 16-byte piece, k-step 1 uses z, w.
  auto mma_chunk = [&](const uint4& a_lo, const uint4& a_hi, const uint4 (&xb)[MT]) {
    const uint32_t a0[4] = {a_lo.x, a_hi.x, a_lo.y, a_hi.y};
    const uint32_t a1[4] = {a_lo.z, a_hi.z, a_lo.w, a_hi.w};
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      mma_ordered<T>(acc[mt], a0, xb[mt].x, xb[mt].y);
      mma_ordered<T>(acc[mt], a1, xb[mt].z, xb[mt].w);
    }
  };
  auto load_x = [&](int c, uint4 (&xb)[MT]) {
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
      xb[mt] = x_valid[mt] ? load_activation(x_row[mt] + 32 * c) : make_uint4(0, 0, 0, 0);
  };
  // Full rounds: kUnroll chunks per warp, every load issued before the first mma.
  for (; c0 + (kUnroll - 1) * kWarps < chunks; c0 += kWarps * kUnroll) {
    if (!preloaded) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        wa[u] = load_stream(w_lo + 32 * (c0 + u * kWarps));
        wb[u] = load_stream(w_hi + 32 * (c0 + u * kWarps));
      }
    }
    preloaded = false;
    uint4 xb[kUnroll][MT];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      load_x(c0 + u * kWarps, xb[u]);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      mma_chunk(wa[u], wb[u], xb[u]);
  }
  for (; c0 < chunks; c0 += kWarps) { // the rest, one chunk at a time
    uint4 xb[MT];
    const uint4 a_lo = load_stream(w_lo + 32 * c0), a_hi = load_stream(w_hi + 32 * c0);
    load_x(c0, xb);
    mma_chunk(a_lo, a_hi, xb);
  }
  // acc[mt]: c0, c1 -> feature g, x rows 8 mt + 2 t4 (+1); c2, c3 -> feature g + 8.
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    partial[warp][8 * mt + 2 * t4][g] = acc[mt][0];
    partial[warp][8 * mt + 2 * t4 + 1][g] = acc[mt][1];
    partial[warp][8 * mt + 2 * t4][g + 8] = acc[mt][2];
    partial[warp][8 * mt + 2 * t4 + 1][g + 8] = acc[mt][3];
  }
  __syncthreads();
  for (int e = threadIdx.x; e < MT * 8 * kRows; e += kThreads) {
    const int row = e / kRows, f = e % kRows;
    if (row >= m)
      continue;
    float sum = bias ? to_float(bias[n0 + f]) : 0.0f;
#pragma unroll
    for (int wi = 0; wi < kWarps; ++wi)
      sum += partial[wi][row][f];
    y[int64_t(row) * n + n0 + f] = from_float<T>(sum);
  }
}

template <typename T, int MT>
void launch_kernel(T* y, const T* x, const T* w, const T* bias, int64_t m, int64_t n, int64_t k,
                   cudaStream_t stream) {
  launch_pdl(small_gemm_kernel<T, MT>, dim3(unsigned(n / kRows)), dim3(kThreads), 0, stream, y, x, w, bias, int(m),
             int(n), int(k));
}

template <typename T>
void launch_typed(void* y, const void* x, const void* w, const void* bias, int64_t m, int64_t n, int64_t k,
                  cudaStream_t stream) {
  auto* yt = static_cast<T*>(y);
  auto* xt = static_cast<const T*>(x);
  auto* wt = static_cast<const T*>(w);
  auto* bt = static_cast<const T*>(bias);
  if (m <= 8)
    launch_kernel<T, 1>(yt, xt, wt, bt, m, n, k, stream);
  else
    launch_kernel<T, 2>(yt, xt, wt, bt, m, n, k, stream);
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

} // namespace

bool small_gemm_supported(const void* x, const void* w, int64_t m, int64_t n, int64_t k, dtype type) {
  return (type == dtype::bf16 || type == dtype::f16) && m >= 1 && m <= 16 && n % kRows == 0 && k % 32 == 0 &&
         n <= (int64_t(1) << 30) && k <= (int64_t(1) << 30) && aligned16(x) && aligned16(w);
}

void launch_small_gemm(void* y, const void* x, const void* w, const void* bias, int64_t m, int64_t n, int64_t k,
                       dtype type, cudaStream_t stream) {
  if (!small_gemm_supported(x, w, m, n, k, type))
    throw std::invalid_argument("small_gemm: unsupported shape or dtype (m " + std::to_string(m) + ", n " +
                                std::to_string(n) + ", k " + std::to_string(k) + ")");
  if (type == dtype::bf16)
    launch_typed<__nv_bfloat16>(y, x, w, bias, m, n, k, stream);
  else
    launch_typed<__half>(y, x, w, bias, m, n, k, stream);
}

} // namespace actorserve::gpu

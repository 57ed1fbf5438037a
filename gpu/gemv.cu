// Small-batch linear layers on tensor cores (see gemv.hpp). One block of eight warps per 16
// output features; the warps split K (warp w takes the 32-wide K chunks w, w + 8, ...), each
// keeps a 16 x (8 or 16) accumulator of mma.sync m16n8k16 with the weight rows as A and the
// activations as B, and the eight partial sums meet once in shared memory.
//
// Fragments come straight from global memory, 16 bytes a load: inside each 32-wide K chunk the
// order of k is permuted so that lane (g, t) reads the contiguous bytes [8t, 8t + 8) of its rows,
// for the weights and the activations alike (a dot product does not depend on the order of its
// terms). Four chunks' loads are issued before the first mma, and the weights bypass L1.
#include "gpu/cuda_check.hpp"
#include "gpu/device_math.cuh"
#include "gpu/gemv.hpp"
#include "gpu/mma.cuh"

namespace actorserve::gpu {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;
constexpr int kRows = 16;  // output features per block
constexpr int kUnroll = 4; // K chunks in flight per warp

__device__ __forceinline__ uint4 load_stream(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

template <typename T, int MT>
__global__ void __launch_bounds__(kThreads) small_gemm_kernel(T* __restrict__ y, const T* __restrict__ x,
                                                              const T* __restrict__ w, const T* __restrict__ bias,
                                                              int m, int n, int k) {
  __shared__ float partial[kWarps][MT * 8][kRows]; // [warp][x row][feature]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  const int n0 = blockIdx.x * kRows;
  const T* w_lo = w + int64_t(n0 + g) * k + 8 * t4; // rows g and g + 8 of the block's features
  const T* w_hi = w_lo + int64_t(8) * k;
  const T* x_row[MT];
  bool x_valid[MT];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    x_valid[mt] = 8 * mt + g < m;
    x_row[mt] = x + int64_t(x_valid[mt] ? 8 * mt + g : 0) * k + 8 * t4;
  }
  float acc[MT][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
    acc[mt][0] = acc[mt][1] = acc[mt][2] = acc[mt][3] = 0.0f;

  const int chunks = k / 32;
  for (int c0 = warp; c0 < chunks; c0 += kWarps * kUnroll) {
    uint4 wa[kUnroll], wb[kUnroll], xb[kUnroll][MT];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * kWarps;
      const bool in = c < chunks;
      wa[u] = in ? load_stream(w_lo + 32 * c) : make_uint4(0, 0, 0, 0);
      wb[u] = in ? load_stream(w_hi + 32 * c) : make_uint4(0, 0, 0, 0);
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
        xb[u][mt] = (in && x_valid[mt]) ? __ldg(reinterpret_cast<const uint4*>(x_row[mt] + 32 * c))
                                        : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      // k-step 0 of the chunk uses words x, y of each 16-byte piece; k-step 1 uses z, w.
      const uint32_t a0[4] = {wa[u].x, wb[u].x, wa[u].y, wb[u].y};
      const uint32_t a1[4] = {wa[u].z, wb[u].z, wa[u].w, wb[u].w};
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        mma_16816<T>(acc[mt], a0, xb[u][mt].x, xb[u][mt].y);
        mma_16816<T>(acc[mt], a1, xb[u][mt].z, xb[u][mt].w);
      }
    }
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

template <typename T>
void launch_typed(void* y, const void* x, const void* w, const void* bias, int64_t m, int64_t n, int64_t k,
                  cudaStream_t stream) {
  const unsigned blocks = unsigned(n / kRows);
  auto* yt = static_cast<T*>(y);
  auto* xt = static_cast<const T*>(x);
  auto* wt = static_cast<const T*>(w);
  auto* bt = static_cast<const T*>(bias);
  if (m <= 8)
    small_gemm_kernel<T, 1><<<blocks, kThreads, 0, stream>>>(yt, xt, wt, bt, int(m), int(n), int(k));
  else
    small_gemm_kernel<T, 2><<<blocks, kThreads, 0, stream>>>(yt, xt, wt, bt, int(m), int(n), int(k));
  ACTORSERVE_CUDA_CHECK_LAUNCH("small_gemm_kernel");
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

// Weight-only FP8 (see fp8_linear.hpp): quantization at load, dequantization into a scratch weight
// for the cuBLASLt path, and the small-batch GEMM over E4M3 weights.
//
// The small GEMM is gemv.cu's kernel with 64-wide K chunks: lane (g, t4) loads the 16 contiguous
// E4M3 bytes [16 t4, 16 t4 + 16) of its two weight rows (one 16-byte load each) and the same 16
// activations (two 16-byte loads); each 4-byte word of weights is one mma k-step (two pairs per
// row). Within a chunk the k order is permuted the same way for weights and activations, which a
// dot product does not see. E4M3 -> bf16/fp16 is exact: the 7 magnitude bits are placed in the
// 16-bit format's exponent/mantissa position and the value is rescaled by a power of two (2^120 for
// bf16, 2^8 for fp16), which also covers E4M3's subnormals.
#include "gpu/cuda_check.hpp"
#include "gpu/device_math.cuh"
#include "gpu/fp8_linear.hpp"
#include "gpu/pdl.cuh"
#include "gpu/small_gemm_common.cuh"

#include <cuda_fp8.h>

#include <cstdlib>
#include <string>

namespace actorserve::gpu {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;
constexpr int kRows = 16;  // output features per block
// Variants (ACTORSERVE_FP8_GEMM, read once): 64-wide K chunks in flight per warp and the blocks per
// multiprocessor the registers are bounded for (bytes in flight per SM = blocks x 8 warps x chunks KB).
// 0: 4 chunks, 2 blocks (m <= 16); 1: 4 chunks, 3 blocks for m <= 8; 2: 2 chunks, 4 blocks for m <= 8.
int fp8_gemm_variant() {
  static const int v = [] {
    const char* e = std::getenv("ACTORSERVE_FP8_GEMM");
    return e ? std::atoi(e) : 0;
  }();
  return v;
}

__device__ __forceinline__ uint2 load_stream8(const void* p) {
  uint2 v;
  asm volatile("ld.global.cs.v2.u32 {%0,%1}, [%2];\n" : "=r"(v.x), "=r"(v.y) : "l"(p));
  return v;
}

/// Two E4M3 values (bytes 0, 1 of `word`, or bytes 2, 3 when `high`) as a 16-bit pair of T, the
/// lower-indexed byte in the low half.
template <typename T>
__device__ __forceinline__ uint32_t e4m3_pair(uint32_t word, bool high);
template <>
__device__ __forceinline__ uint32_t e4m3_pair<__nv_bfloat16>(uint32_t word, bool high) {
  const uint32_t p = __byte_perm(word, 0, high ? 0x3424 : 0x1404); // each half: byte << 8
  // sign stays at bit 15; the 7 magnitude bits move from [8, 15) to [4, 11): a bf16 of value
  // e4m3 * 2^-120 (exponent bias 127 instead of 7), subnormals included.
  const uint32_t bits = (p & 0x80008000u) | ((p >> 4) & 0x07f007f0u);
  __nv_bfloat162 v = *reinterpret_cast<const __nv_bfloat162*>(&bits);
  const uint32_t two120 = 0x7b807b80u; // 2^120 in both halves
  v = __hmul2(v, *reinterpret_cast<const __nv_bfloat162*>(&two120));
  return *reinterpret_cast<const uint32_t*>(&v);
}
template <>
__device__ __forceinline__ uint32_t e4m3_pair<__half>(uint32_t word, bool high) {
  const uint32_t p = __byte_perm(word, 0, high ? 0x3424 : 0x1404);
  // magnitude bits to [7, 14): an fp16 of value e4m3 * 2^-8 (bias 15 instead of 7).
  const uint32_t bits = (p & 0x80008000u) | ((p >> 1) & 0x3f803f80u);
  __half2 v = *reinterpret_cast<const __half2*>(&bits);
  const uint32_t two8 = 0x5c005c00u; // 256 in both halves
  v = __hmul2(v, *reinterpret_cast<const __half2*>(&two8));
  return *reinterpret_cast<const uint32_t*>(&v);
}

__device__ __forceinline__ uint32_t word_of(const uint4& v, int i) {
  return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

template <typename T, int MT, int kUnroll, int kMinBlocks>
__global__ void __launch_bounds__(kThreads, kMinBlocks)
    small_gemm_fp8_kernel(T* __restrict__ y, const T* __restrict__ x, const uint8_t* __restrict__ w,
                          const float* __restrict__ scales, const T* __restrict__ bias, int m, int n, int k) {
  __shared__ float partial[kWarps][MT * 8][kRows]; // [warp][x row][feature]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  const int n0 = blockIdx.x * kRows;
  const int chunks = k / 64;
  const uint8_t* w_lo = w + int64_t(n0 + g) * k + 16 * t4; // rows g and g + 8 of the block's features
  const uint8_t* w_hi = w_lo + int64_t(8) * k;

  // Weights do not depend on the kernel before: the first round goes out before the wait.
  uint4 wa[kUnroll], wb[kUnroll];
  int c0 = warp;
  bool preloaded = c0 + (kUnroll - 1) * kWarps < chunks;
  if (preloaded) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      wa[u] = load_stream(w_lo + 64 * (c0 + u * kWarps));
      wb[u] = load_stream(w_hi + 64 * (c0 + u * kWarps));
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
    x_row[mt] = x + int64_t(r) * k + 16 * t4;
  }
  float acc[MT][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
    acc[mt][0] = acc[mt][1] = acc[mt][2] = acc[mt][3] = 0.0f;

  // One 64-wide chunk: weight word j (bytes 4j..4j+3 of the lane's 16) is k-step j; its
  // activation pairs are words 2j, 2j + 1 of the lane's 16 activations (xb[.][0] then xb[.][1]).
  auto mma_chunk = [&](const uint4& a_lo, const uint4& a_hi, const uint4 (&xb)[MT][2]) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint32_t lo = word_of(a_lo, j), hi = word_of(a_hi, j);
      const uint32_t a[4] = {e4m3_pair<T>(lo, false), e4m3_pair<T>(hi, false), e4m3_pair<T>(lo, true),
                             e4m3_pair<T>(hi, true)};
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
        mma_ordered<T>(acc[mt], a, word_of(xb[mt][j / 2], 2 * (j % 2)), word_of(xb[mt][j / 2], 2 * (j % 2) + 1));
    }
  };
  auto load_x = [&](int c, uint4 (&xb)[MT][2]) {
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      xb[mt][0] = x_valid[mt] ? load_activation(x_row[mt] + 64 * c) : make_uint4(0, 0, 0, 0);
      xb[mt][1] = x_valid[mt] ? load_activation(x_row[mt] + 64 * c + 8) : make_uint4(0, 0, 0, 0);
    }
  };
  for (; c0 + (kUnroll - 1) * kWarps < chunks; c0 += kWarps * kUnroll) {
    if (!preloaded) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        wa[u] = load_stream(w_lo + 64 * (c0 + u * kWarps));
        wb[u] = load_stream(w_hi + 64 * (c0 + u * kWarps));
      }
    }
    preloaded = false;
    uint4 xb[kUnroll][MT][2];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      load_x(c0 + u * kWarps, xb[u]);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      mma_chunk(wa[u], wb[u], xb[u]);
  }
  for (; c0 < chunks; c0 += kWarps) { // the rest, one chunk at a time
    uint4 xb[MT][2];
    const uint4 a_lo = load_stream(w_lo + 64 * c0), a_hi = load_stream(w_hi + 64 * c0);
    load_x(c0, xb);
    mma_chunk(a_lo, a_hi, xb);
  }
  if (k % 64 != 0 && warp == chunks % kWarps) {
    // A last 32-wide half chunk: lane bytes [8 t4, 8 t4 + 8) of it, two k-steps.
    const int64_t base = int64_t(64) * chunks;
    const uint2 a_lo = load_stream8(w_lo - 8 * t4 + base), a_hi = load_stream8(w_hi - 8 * t4 + base);
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const uint32_t lo = j == 0 ? a_lo.x : a_lo.y, hi = j == 0 ? a_hi.x : a_hi.y;
      const uint32_t a[4] = {e4m3_pair<T>(lo, false), e4m3_pair<T>(hi, false), e4m3_pair<T>(lo, true),
                             e4m3_pair<T>(hi, true)};
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        const uint4 xv = x_valid[mt] ? load_activation(x_row[mt] - 8 * t4 + base) : make_uint4(0, 0, 0, 0);
        mma_ordered<T>(acc[mt], a, j == 0 ? xv.x : xv.z, j == 0 ? xv.y : xv.w);
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
    float sum = 0.0f;
#pragma unroll
    for (int wi = 0; wi < kWarps; ++wi)
      sum += partial[wi][row][f];
    sum *= scales[n0 + f];
    if (bias)
      sum += to_float(bias[n0 + f]);
    y[int64_t(row) * n + n0 + f] = from_float<T>(sum);
  }
}

template <typename T>
void launch_typed(void* y, const void* x, const uint8_t* w, const float* scales, const void* bias, int64_t m,
                  int64_t n, int64_t k, cudaStream_t stream) {
  auto* yt = static_cast<T*>(y);
  auto* xt = static_cast<const T*>(x);
  auto* bt = static_cast<const T*>(bias);
  const dim3 grid(unsigned(n / kRows)), block(kThreads);
  const int variant = fp8_gemm_variant();
  if (m > 8)
    launch_pdl(small_gemm_fp8_kernel<T, 2, 4, 2>, grid, block, 0, stream, yt, xt, w, scales, bt, int(m), int(n),
               int(k));
  else if (variant == 1)
    launch_pdl(small_gemm_fp8_kernel<T, 1, 4, 3>, grid, block, 0, stream, yt, xt, w, scales, bt, int(m), int(n),
               int(k));
  else if (variant == 2)
    launch_pdl(small_gemm_fp8_kernel<T, 1, 2, 4>, grid, block, 0, stream, yt, xt, w, scales, bt, int(m), int(n),
               int(k));
  else
    launch_pdl(small_gemm_fp8_kernel<T, 1, 4, 2>, grid, block, 0, stream, yt, xt, w, scales, bt, int(m), int(n),
               int(k));
}

// One block per row: the row's largest magnitude, then each element divided by the scale (IEEE
// division, as the CPU reference) and rounded by cvt.rn.satfinite to E4M3.
__global__ void quantize_rows_kernel(uint8_t* __restrict__ q, float* __restrict__ scales, const float* __restrict__ w,
                                     int64_t cols) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const float* row = w + r * cols;
  float amax = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    amax = fmaxf(amax, fabsf(row[c]));
  amax = block_max(amax, scratch);
  const float scale = amax > 0.0f ? __fdiv_rn(amax, 448.0f) : 1.0f;
  if (threadIdx.x == 0)
    scales[r] = scale;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    q[r * cols + c] = uint8_t(__nv_cvt_float_to_fp8(__fdiv_rn(row[c], scale), __NV_SATFINITE, __NV_E4M3));
}

// One block per row (no division per element); eight bytes in and one vector store out per thread
// when the row length allows.
template <typename T>
struct alignas(8 * sizeof(T)) vec8 {
  T v[8];
};
template <typename T>
__global__ void dequantize_rows_kernel(T* __restrict__ out, const uint8_t* __restrict__ q,
                                       const float* __restrict__ scales, int64_t cols) {
  const int64_t r = blockIdx.x;
  const float scale = scales[r];
  const uint8_t* row = q + r * cols;
  T* dst = out + r * cols;
  auto one = [&](uint8_t b) {
    const __half_raw h = __nv_cvt_fp8_to_halfraw(__nv_fp8_storage_t(b), __NV_E4M3);
    return from_float<T>(__fmul_rn(__half2float(__half(h)), scale));
  };
  if (cols % 8 == 0) {
    for (int64_t c = 8 * int64_t(threadIdx.x); c < cols; c += 8 * int64_t(blockDim.x)) {
      const uint2 bytes = *reinterpret_cast<const uint2*>(row + c);
      vec8<T> v;
#pragma unroll
      for (int i = 0; i < 8; ++i)
        v.v[i] = one(uint8_t((i < 4 ? bytes.x : bytes.y) >> (8 * (i % 4))));
      *reinterpret_cast<vec8<T>*>(dst + c) = v;
    }
  } else {
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
      dst[c] = one(row[c]);
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

} // namespace

void launch_quantize_rows_e4m3(uint8_t* q, float* scales, const float* w, int64_t rows, int64_t cols,
                               cudaStream_t stream) {
  if (rows <= 0 || cols <= 0)
    return;
  quantize_rows_kernel<<<unsigned(rows), 256, 0, stream>>>(q, scales, w, cols);
  ACTORSERVE_CUDA_CHECK(cudaGetLastError());
}

void launch_dequantize_rows_e4m3(void* out, const uint8_t* q, const float* scales, int64_t rows, int64_t cols,
                                 dtype type, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0)
    return;
  ACTORSERVE_DISPATCH_FLOAT(type, "dequantize_rows_e4m3",
                            dequantize_rows_kernel<scalar_t><<<unsigned(rows), 256, 0, stream>>>(
                                static_cast<scalar_t*>(out), q, scales, cols));
  ACTORSERVE_CUDA_CHECK(cudaGetLastError());
}

bool small_gemm_fp8_supported(const void* x, const void* w, int64_t m, int64_t n, int64_t k, dtype type) {
  return (type == dtype::bf16 || type == dtype::f16) && m >= 1 && m <= 16 && n % kRows == 0 && n > 0 &&
         k % 32 == 0 && k > 0 && n <= (int64_t(1) << 30) && k <= (int64_t(1) << 30) && aligned16(x) && aligned16(w);
}

void launch_small_gemm_fp8(void* y, const void* x, const uint8_t* w, const float* scales, const void* bias,
                           int64_t m, int64_t n, int64_t k, dtype type, cudaStream_t stream) {
  if (!small_gemm_fp8_supported(x, w, m, n, k, type))
    throw std::invalid_argument("small_gemm_fp8: unsupported shape or dtype (m " + std::to_string(m) + ", n " +
                                std::to_string(n) + ", k " + std::to_string(k) + ")");
  if (type == dtype::bf16)
    launch_typed<__nv_bfloat16>(y, x, w, scales, bias, m, n, k, stream);
  else
    launch_typed<__half>(y, x, w, scales, bias, m, n, k, stream);
}

} // namespace actorserve::gpu

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
//
// The NORM variant takes the residual instead of x and computes the fused add + RMSNorm in front
// (exactly as rmsnorm.cu does) into shared memory before the main loop: at decode batch sizes the
// row is 8 KB, every block recomputes it from L2 while its first weights are in flight, and the
// separate norm launch and its round trip are gone.
#include "gpu/cuda_check.hpp"
#include "gpu/device_math.cuh"
#include "gpu/gemv.hpp"
#include "gpu/pdl.cuh"

#include <string>

namespace actorserve::gpu {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;
constexpr int kRows = 16;  // output features per block
constexpr int kUnroll = 8; // K chunks in flight per warp (8 KB of weights)

/// Weights are read once per step: streaming (evict-first) loads keep them from pushing the
/// activations and the KV cache out of the caches. asm volatile, like mma_ordered below, so the
/// compiler keeps the program order: a round's loads all go out before its first mma (left to
/// itself it interleaves them to save registers, and each mma then waits for its own load).
__device__ __forceinline__ uint4 load_stream(const void* p) {
  uint4 v;
  asm volatile("ld.global.cs.v4.u32 {%0,%1,%2,%3}, [%4];\n" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}
/// Activations were written by the kernel before: L2 only (.cg), never a possibly stale L1 line of
/// a block that started before that kernel finished.
__device__ __forceinline__ uint4 load_activation(const void* p) {
  uint4 v;
  asm volatile("ld.global.cg.v4.u32 {%0,%1,%2,%3}, [%4];\n" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}

template <typename T>
__device__ __forceinline__ void mma_ordered(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void mma_ordered<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                                           uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
               "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma_ordered<__half>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
               "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/// The RMSNorm in front of the NORM variant (see gemv.hpp's launch_small_gemm_norm).
template <typename T> struct norm_input {
  const T* delta = nullptr;  // [m, k], added to the residual first (nullptr: none)
  const T* weight = nullptr; // [k]
  T* residual_out = nullptr; // [m, k]: residual (+ delta), written by block 0
  float eps = 0.0f;
};

constexpr int kNormMaxVecs = 2; // 16-byte pieces per thread and row: k <= 2 * 8 * 256 = 4096

/// NORM prologue: act[r] = weight * to_T(v * rsqrt(mean(v^2) + eps)) with v = residual[r] (+
/// delta[r]) rounded to T, for the m rows, into shared memory. The same pieces per thread, the same
/// order of the sum of squares and the same block reduction as fused_add_rmsnorm_vec_kernel
/// (rmsnorm.cu), so the activation has exactly that kernel's bits.
template <typename T>
__device__ __forceinline__ void norm_prologue(T* act, int act_stride, const T* residual, const norm_input<T>& nrm,
                                              int m, int k) {
  constexpr int kVec = 8;
  __shared__ float scratch[32];
  const int num_vecs = k / kVec;
  const bool writer = blockIdx.x == 0;
  for (int r = 0; r < m; ++r) {
    const T* res = residual + int64_t(r) * k;
    const T* del = nrm.delta ? nrm.delta + int64_t(r) * k : nullptr;
    uint4 r_raw[kNormMaxVecs], d_raw[kNormMaxVecs], w_raw[kNormMaxVecs];
#pragma unroll
    for (int j = 0; j < kNormMaxVecs; ++j) {
      const int i = threadIdx.x + j * kThreads;
      if (i < num_vecs) {
        r_raw[j] = load_activation(res + kVec * i);
        d_raw[j] = del ? load_activation(del + kVec * i) : make_uint4(0, 0, 0, 0);
        w_raw[j] = __ldg(reinterpret_cast<const uint4*>(nrm.weight) + i);
      }
    }
    float v[kNormMaxVecs][kVec];
    float sum_sq = 0.0f;
#pragma unroll
    for (int j = 0; j < kNormMaxVecs; ++j) {
      const int i = threadIdx.x + j * kThreads;
      if (i >= num_vecs)
        continue;
      const T* rt = reinterpret_cast<const T*>(&r_raw[j]);
      const T* dt = reinterpret_cast<const T*>(&d_raw[j]);
#pragma unroll
      for (int e = 0; e < kVec; ++e) {
        v[j][e] = del ? round_to<T>(to_float(rt[e]) + to_float(dt[e])) : to_float(rt[e]);
        sum_sq += v[j][e] * v[j][e];
      }
      if (writer) {
        uint4 packed;
        T* p = reinterpret_cast<T*>(&packed);
#pragma unroll
        for (int e = 0; e < kVec; ++e)
          p[e] = from_float<T>(v[j][e]);
        *reinterpret_cast<uint4*>(nrm.residual_out + int64_t(r) * k + kVec * i) = packed;
      }
    }
    const float total = block_sum(sum_sq, scratch);
    const float inv_rms = rsqrtf(total / float(k) + nrm.eps);
#pragma unroll
    for (int j = 0; j < kNormMaxVecs; ++j) {
      const int i = threadIdx.x + j * kThreads;
      if (i >= num_vecs)
        continue;
      const T* wt = reinterpret_cast<const T*>(&w_raw[j]);
      uint4 packed;
      T* p = reinterpret_cast<T*>(&packed);
#pragma unroll
      for (int e = 0; e < kVec; ++e)
        p[e] = from_float<T>(to_float(wt[e]) * round_to<T>(v[j][e] * inv_rms));
      *reinterpret_cast<uint4*>(act + r * act_stride + kVec * i) = packed;
    }
  }
  __syncthreads();
}

// Two blocks per multiprocessor: without the minimum, ptxas caps the kernel near 64 registers and
// interleaves loads with mmas, which leaves one chunk in flight per warp. NORM: x is the residual;
// the block computes the normalized activation into shared memory first (norm_prologue).
template <typename T, int MT, bool NORM>
__global__ void __launch_bounds__(kThreads, 2)
    small_gemm_kernel(T* __restrict__ y, const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                      int m, int n, int k, norm_input<T> nrm) {
  __shared__ float partial[kWarps][MT * 8][kRows]; // [warp][x row][feature]
  extern __shared__ uint4 act_smem[];              // NORM: [m][k + 8] of T
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  const int n0 = blockIdx.x * kRows;
  const int chunks = k / 32;
  const T* w_lo = w + int64_t(n0 + g) * k + 8 * t4; // rows g and g + 8 of the block's features
  const T* w_hi = w_lo + int64_t(8) * k;

  // The weights do not depend on the kernel before: the first round's loads go out before the
  // dependency wait, so they overlap that kernel's tail (and the prologue below).
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

  T* act = reinterpret_cast<T*>(act_smem);
  const int act_stride = k + 8; // 16 bytes of padding: the 8 rows g of a load hit different banks
  if constexpr (NORM)
    norm_prologue<T>(act, act_stride, x, nrm, m, k);

  const T* x_row[MT];
  bool x_valid[MT];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    x_valid[mt] = 8 * mt + g < m;
    const int r = x_valid[mt] ? 8 * mt + g : 0;
    x_row[mt] = NORM ? act + r * act_stride + 8 * t4 : x + int64_t(r) * k + 8 * t4;
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
    for (int mt = 0; mt < MT; ++mt) {
      if constexpr (NORM)
        xb[mt] = x_valid[mt] ? *reinterpret_cast<const uint4*>(x_row[mt] + 32 * c) : make_uint4(0, 0, 0, 0);
      else
        xb[mt] = x_valid[mt] ? load_activation(x_row[mt] + 32 * c) : make_uint4(0, 0, 0, 0);
    }
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

constexpr int64_t kNormMaxRows = 2; // the prologue normalizes row after row

template <typename T, int MT, bool NORM>
void launch_kernel(T* y, const T* x, const T* w, const T* bias, int64_t m, int64_t n, int64_t k,
                   const norm_input<T>& nrm, cudaStream_t stream) {
  auto* kernel = small_gemm_kernel<T, MT, NORM>;
  const size_t smem = NORM ? size_t(m) * size_t(k + 8) * sizeof(T) : 0;
  launch_pdl(kernel, dim3(unsigned(n / kRows)), dim3(kThreads), smem, stream, y, x, w, bias, int(m), int(n), int(k),
             nrm);
}

template <typename T>
void launch_typed(void* y, const void* x, const void* w, const void* bias, int64_t m, int64_t n, int64_t k,
                  const norm_input<T>* nrm, cudaStream_t stream) {
  auto* yt = static_cast<T*>(y);
  auto* xt = static_cast<const T*>(x);
  auto* wt = static_cast<const T*>(w);
  auto* bt = static_cast<const T*>(bias);
  if (nrm)
    launch_kernel<T, 1, true>(yt, xt, wt, bt, m, n, k, *nrm, stream);
  else if (m <= 8)
    launch_kernel<T, 1, false>(yt, xt, wt, bt, m, n, k, {}, stream);
  else
    launch_kernel<T, 2, false>(yt, xt, wt, bt, m, n, k, {}, stream);
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
    launch_typed<__nv_bfloat16>(y, x, w, bias, m, n, k, nullptr, stream);
  else
    launch_typed<__half>(y, x, w, bias, m, n, k, nullptr, stream);
}

bool small_gemm_norm_supported(const void* residual, const void* w, int64_t m, int64_t n, int64_t k, dtype type) {
  return m <= kNormMaxRows && k <= int64_t(kNormMaxVecs) * kThreads * 8 &&
         small_gemm_supported(residual, w, m, n, k, type);
}

void launch_small_gemm_norm(void* y, const void* residual_in, const void* delta, const void* norm_weight,
                            void* residual_out, float eps, const void* w, const void* bias, int64_t m, int64_t n,
                            int64_t k, dtype type, cudaStream_t stream) {
  if (!small_gemm_norm_supported(residual_in, w, m, n, k, type) || !aligned16(residual_out) ||
      !aligned16(norm_weight) || (delta && !aligned16(delta)) || residual_out == residual_in)
    throw std::invalid_argument("small_gemm_norm: unsupported shape, dtype or buffers (m " + std::to_string(m) +
                                ", n " + std::to_string(n) + ", k " + std::to_string(k) + ")");
  auto run = [&](auto tag) {
    using T = decltype(tag);
    norm_input<T> nrm;
    nrm.delta = static_cast<const T*>(delta);
    nrm.weight = static_cast<const T*>(norm_weight);
    nrm.residual_out = static_cast<T*>(residual_out);
    nrm.eps = eps;
    launch_typed<T>(y, residual_in, w, bias, m, n, k, &nrm, stream);
  };
  if (type == dtype::bf16)
    run(__nv_bfloat16{});
  else
    run(__half{});
}

} // namespace actorserve::gpu

// Prefill-chunk attention on tensor cores (see paged_attention_kernels.hpp): flash-attention 2
// style. One block of four warps per (item, KV head): the item's 64 query rows (tokens x the
// GQA group, token-major) sit in shared memory once, each warp owns 16 of them as mma A
// fragments in registers; 64-key K/V tiles of the sequence stream through shared memory with
// cp.async, two stages deep, so the next tile loads while this one is used. Per tile and warp:
// S = Q K^T (ldmatrix on K), causal mask, online softmax in registers (rows g and g + 8 of the
// warp's 16 live in a quad of lanes), O += P V (ldmatrix.trans on V). P is split into a 16-bit
// value and its rounding error (two mmas), so the weights keep ~16 bits as on the fp32 path.
#include "gpu/cuda_check.hpp"
#include "gpu/device_math.cuh"
#include "gpu/mma.cuh"
#include "gpu/paged_attention_kernels.hpp"

namespace actorserve::gpu::detail {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kRows = 16 * kWarps; // query rows per block
constexpr int kKeys = 64;          // keys per tile
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ void cp_async_16(void* smem_dst, const void* global_src, int src_bytes) {
  const unsigned dst = unsigned(__cvta_generic_to_shared(smem_dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(global_src), "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

template <typename T, int D>
struct prefill_config {
  static constexpr int kChunk = 8;            // 16-bit elements per 16-byte chunk
  static constexpr int kChunks = D / kChunk;  // chunks per row
  static constexpr int kStride = D + kChunk;  // smem row stride: 16-byte pad, ldmatrix rows hit distinct banks
  static constexpr int kTileElems = kKeys * kStride;
  static constexpr size_t kSmemBytes = size_t(kRows + 4 * kKeys) * kStride * sizeof(T); // Q, 2 x (K, V)
};

template <typename T, int D>
__global__ void __launch_bounds__(kThreads, 2) prefill_mma_kernel(paged_attention_args a) {
  using cfg = prefill_config<T, D>;
  constexpr int kStride = cfg::kStride, kChunks = cfg::kChunks;
  constexpr int kKSteps = D / 16;   // k-steps of Q K^T
  constexpr int kKeyTiles = kKeys / 8;
  constexpr int kDimTiles = D / 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* q_s = reinterpret_cast<T*>(smem_raw);      // [kRows][kStride]
  T* kv_s = q_s + kRows * kStride;              // [2 stages][K, V][kKeys][kStride]

  const attention_work_item item = a.items[blockIdx.x];
  if (item.q_len <= 0)
    return;
  const int kv_head = blockIdx.y;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  const int group = a.num_q_heads / a.num_kv_heads;
  const int item_tokens = min(item.q_len, kRows / group);
  const int valid_rows = item_tokens * group;
  const int kv_len = item.q_pos + item_tokens;
  const int num_tiles = (kv_len + kKeys - 1) / kKeys;
  const int32_t* table = a.block_tables + int64_t(item.seq) * (*a.block_table_stride);
  const int bs = a.block_size;
  const int64_t slot_stride = int64_t(a.num_kv_heads) * D;
  const T* key_cache = static_cast<const T*>(a.key_cache) + int64_t(kv_head) * D;
  const T* value_cache = static_cast<const T*>(a.value_cache) + int64_t(kv_head) * D;

  // Query rows (zero beyond valid_rows).
  {
    const T* q = static_cast<const T*>(a.q);
    for (int e = threadIdx.x; e < kRows * kChunks; e += kThreads) {
      const int row = e / kChunks, c = e % kChunks;
      const T* src = q;
      int bytes = 0;
      if (row < valid_rows) {
        const int token = row / group, head = kv_head * group + row % group;
        src = q + int64_t(item.q_row + token) * a.q_stride + int64_t(head) * D + c * cfg::kChunk;
        bytes = 16;
      }
      cp_async_16(q_s + row * kStride + c * cfg::kChunk, src, bytes);
    }
    cp_async_commit();
  }
  auto load_tile = [&](int tile, int stage) {
    T* k_dst = kv_s + stage * 2 * cfg::kTileElems;
    T* v_dst = k_dst + cfg::kTileElems;
    for (int e = threadIdx.x; e < kKeys * kChunks; e += kThreads) {
      const int key = e / kChunks, c = e % kChunks;
      const int kv = tile * kKeys + key;
      const T* k_src = key_cache;
      const T* v_src = value_cache;
      int bytes = 0; // zero-fill past the end: a zero weight times zero V stays finite
      if (kv < kv_len) {
        const int64_t slot = int64_t(table[kv / bs]) * bs + kv % bs;
        k_src += slot * slot_stride + c * cfg::kChunk;
        v_src += slot * slot_stride + c * cfg::kChunk;
        bytes = 16;
      }
      cp_async_16(k_dst + key * kStride + c * cfg::kChunk, k_src, bytes);
      cp_async_16(v_dst + key * kStride + c * cfg::kChunk, v_src, bytes);
    }
    cp_async_commit();
  };
  if (num_tiles > 0)
    load_tile(0, 0);

  const int row0 = 16 * warp + g, row1 = row0 + 8; // this lane's two rows
  const bool valid0 = row0 < valid_rows, valid1 = row1 < valid_rows;
  const int last0 = item.q_pos + row0 / group, last1 = item.q_pos + row1 / group;
  const float qk_scale = a.scale * kLog2e;
  uint32_t qa[kKSteps][4];
  float o[kDimTiles][4];
#pragma unroll
  for (int n = 0; n < kDimTiles; ++n)
    o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;

  for (int tile = 0; tile < num_tiles; ++tile) {
    const int stage = tile & 1;
    if (tile + 1 < num_tiles) {
      load_tile(tile + 1, stage ^ 1);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    if (tile == 0) {
      // A fragments of the warp's 16 rows: matrices (rows 0-7 | 8-15) x (dims +0 | +8).
      const T* base = q_s + (16 * warp + (lane & 7) + 8 * ((lane >> 3) & 1)) * kStride + 8 * (lane >> 4);
#pragma unroll
      for (int ks = 0; ks < kKSteps; ++ks)
        ldmatrix_x4(qa[ks], base + 16 * ks);
    }
    const T* k_tile = kv_s + stage * 2 * cfg::kTileElems;
    const T* v_tile = k_tile + cfg::kTileElems;

    // S = Q K^T: B fragments of two 8-key tiles per ldmatrix (keys +0 | +8) x (dims +0 | +8).
    float s[kKeyTiles][4];
#pragma unroll
    for (int n = 0; n < kKeyTiles; ++n)
      s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
    {
      const T* base = k_tile + ((lane & 7) + 8 * (lane >> 4)) * kStride + 8 * ((lane >> 3) & 1);
#pragma unroll
      for (int ks = 0; ks < kKSteps; ++ks)
#pragma unroll
        for (int np = 0; np < kKeyTiles / 2; ++np) {
          uint32_t b[4];
          ldmatrix_x4(b, base + 16 * np * kStride + 16 * ks);
          mma_16816<T>(s[2 * np], qa[ks], b[0], b[1]);
          mma_16816<T>(s[2 * np + 1], qa[ks], b[2], b[3]);
        }
    }

    // Causal mask and online softmax; rows row0 (c0, c1) and row1 (c2, c3), one quad each.
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int n = 0; n < kKeyTiles; ++n)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int key = tile * kKeys + 8 * n + 2 * t4 + c;
        s[n][c] = (valid0 && key <= last0) ? s[n][c] * qk_scale : -INFINITY;
        s[n][2 + c] = (valid1 && key <= last1) ? s[n][2 + c] * qk_scale : -INFINITY;
        mx0 = fmaxf(mx0, s[n][c]);
        mx1 = fmaxf(mx1, s[n][2 + c]);
      }
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, off));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, off));
    }
    const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
    const float alpha0 = mn0 == -INFINITY ? 1.0f : exp2f(m0 - mn0);
    const float alpha1 = mn1 == -INFINITY ? 1.0f : exp2f(m1 - mn1);
    float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
    for (int n = 0; n < kKeyTiles; ++n)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        s[n][c] = mn0 == -INFINITY ? 0.0f : exp2f(s[n][c] - mn0);
        s[n][2 + c] = mn1 == -INFINITY ? 0.0f : exp2f(s[n][2 + c] - mn1);
        sum0 += s[n][c];
        sum1 += s[n][2 + c];
      }
    l0 = l0 * alpha0 + sum0;
    l1 = l1 * alpha1 + sum1;
    m0 = mn0;
    m1 = mn1;
#pragma unroll
    for (int n = 0; n < kDimTiles; ++n) {
      o[n][0] *= alpha0;
      o[n][1] *= alpha0;
      o[n][2] *= alpha1;
      o[n][3] *= alpha1;
    }

    // O += P V, 16 keys per k-step; P's A fragments are the S accumulators of two key tiles.
    {
      const T* base = v_tile + ((lane & 7) + 8 * ((lane >> 3) & 1)) * kStride + 8 * (lane >> 4);
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; ++kk) {
        const float* s0 = s[2 * kk];
        const float* s1 = s[2 * kk + 1];
        const uint32_t p_hi[4] = {pack_pair<T>(s0[0], s0[1]), pack_pair<T>(s0[2], s0[3]), pack_pair<T>(s1[0], s1[1]),
                                  pack_pair<T>(s1[2], s1[3])};
        uint32_t p_lo[4];
        {
          const float2 r0 = unpack_pair<T>(p_hi[0]), r1 = unpack_pair<T>(p_hi[1]);
          const float2 r2 = unpack_pair<T>(p_hi[2]), r3 = unpack_pair<T>(p_hi[3]);
          p_lo[0] = pack_pair<T>(s0[0] - r0.x, s0[1] - r0.y);
          p_lo[1] = pack_pair<T>(s0[2] - r1.x, s0[3] - r1.y);
          p_lo[2] = pack_pair<T>(s1[0] - r2.x, s1[1] - r2.y);
          p_lo[3] = pack_pair<T>(s1[2] - r3.x, s1[3] - r3.y);
        }
#pragma unroll
        for (int dp = 0; dp < kDimTiles / 2; ++dp) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, base + 16 * kk * kStride + 16 * dp);
          mma_16816<T>(o[2 * dp], p_hi, b[0], b[1]);
          mma_16816<T>(o[2 * dp], p_lo, b[0], b[1]);
          mma_16816<T>(o[2 * dp + 1], p_hi, b[2], b[3]);
          mma_16816<T>(o[2 * dp + 1], p_lo, b[2], b[3]);
        }
      }
    }
    __syncthreads(); // the next iteration's load overwrites the other stage
  }

  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
  T* out = static_cast<T*>(a.out);
  const float inv0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, inv1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = h ? row1 : row0;
    if (row >= valid_rows)
      continue;
    const float inv = h ? inv1 : inv0;
    const int token = row / group, head = kv_head * group + row % group;
    T* dst = out + int64_t(item.q_row + token) * a.out_stride + int64_t(head) * D + 2 * t4;
#pragma unroll
    for (int n = 0; n < kDimTiles; ++n)
      *reinterpret_cast<uint32_t*>(dst + 8 * n) = pack_pair<T>(o[n][2 * h] * inv, o[n][2 * h + 1] * inv);
  }
}

template <typename T, int D>
void launch_typed(const paged_attention_args& a, cudaStream_t stream) {
  using cfg = prefill_config<T, D>;
  static const bool attribute_set = [] {
    ACTORSERVE_CUDA_CHECK(cudaFuncSetAttribute(prefill_mma_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               int(cfg::kSmemBytes)));
    return true;
  }();
  (void)attribute_set;
  const dim3 grid(unsigned(a.num_items), unsigned(a.num_kv_heads));
  prefill_mma_kernel<T, D><<<grid, kThreads, cfg::kSmemBytes, stream>>>(a);
  ACTORSERVE_CUDA_CHECK_LAUNCH("prefill_mma_kernel");
}

template <typename T>
void launch_for_dim(const paged_attention_args& a, cudaStream_t stream) {
  switch (a.head_dim) {
    case 32:
      return launch_typed<T, 32>(a, stream);
    case 64:
      return launch_typed<T, 64>(a, stream);
    default:
      return launch_typed<T, 128>(a, stream);
  }
}

bool aligned(const void* p, size_t n) { return reinterpret_cast<uintptr_t>(p) % n == 0; }

} // namespace

bool prefill_mma_supported(const paged_attention_args& a, int rows, dtype type) {
  if (type != dtype::bf16 && type != dtype::f16)
    return false;
  if (a.head_dim != 32 && a.head_dim != 64 && a.head_dim != 128)
    return false;
  if (rows != kRows || a.num_splits != 1)
    return false;
  // 16-byte cp.async of q and cache rows, 4-byte stores of output pairs.
  return a.q_stride % 8 == 0 && a.out_stride % 2 == 0 && aligned(a.q, 16) && aligned(a.key_cache, 16) &&
         aligned(a.value_cache, 16) && aligned(a.out, 4);
}

void launch_prefill_mma(const paged_attention_args& a, dtype type, cudaStream_t stream) {
  if (type == dtype::bf16)
    launch_for_dim<__nv_bfloat16>(a, stream);
  else
    launch_for_dim<__half>(a, stream);
}

} // namespace actorserve::gpu::detail

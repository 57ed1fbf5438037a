// Decode attention on tensor cores (see paged_attention_kernels.hpp). One block of four warps
// per (item, KV head, key split); each warp owns every fourth group of 16 keys of the split
// and keeps its own online softmax, so there is no block barrier inside the key loop, and the
// four warps merge once at the end. All query rows of the item (tokens x the GQA group, at
// most 8) ride in one mma, so each K/V byte is read once for the whole group.
//
// A warp's K and V come straight from global memory into registers in the layout the mma
// wants, 16 bytes per load, all loads of a group issued before the first use:
//   S = Q K^T   (m16n8k16: A = Q rows, zero beyond row 8; B = K, 8 keys per n-tile). The head
//               dim inside each 32-wide slice is permuted so that lane (g, t) reads one
//               contiguous 16-byte chunk of key g; Q is loaded with the same permutation, and a
//               dot product does not care about the order of its terms.
//   O^T += V^T P^T (A = V^T: 16 dims x 16 keys; B = P^T: the S accumulators of two n-tiles,
//               which already sit where B needs them). Output dims are permuted the same way
//               on the V loads and the final write.
// P is rounded to the 16-bit type for the mma; the rounding error is fed back as a second mma
// (P = hi + lo), so the weights keep ~16 bits and the result matches the fp32 path.
#include "gpu/cuda_check.hpp"
#include "gpu/device_math.cuh"
#include "gpu/mma.cuh"
#include "gpu/paged_attention_kernels.hpp"
#include "gpu/pdl.cuh"

namespace actorserve::gpu::detail {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kGroupKeys = 16; // keys per warp step (the k of the P V mma)
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ uint4 load16(const void* p) { return __ldg(static_cast<const uint4*>(p)); }
__device__ __forceinline__ uint2 load8(const void* p) { return __ldg(static_cast<const uint2*>(p)); }

/// Dim of V element e (0 <= e < D/8) held by lane group g: 16-byte chunks, coalesced across g.
template <int D>
__device__ __forceinline__ int v_dim(int g, int e) {
  if constexpr (D >= 64)
    return 64 * (e / 8) + 8 * g + e % 8;
  else
    return g * (D / 8) + e;
}

template <typename T, int D, int ROWS>
__global__ void __launch_bounds__(kThreads, 3) decode_mma_kernel(paged_attention_args a) {
  constexpr int kKChunks = D / 32; // 16-byte K chunks per key per lane
  constexpr int kKSteps = D / 16;  // k-steps of Q K^T
  constexpr int kVWords = D / 16;  // 32-bit V words per key per lane (= m-tiles of O^T)
  static_assert(ROWS <= 8, "one n-tile of query rows");
  __shared__ float m_s[kWarps][8], l_s[kWarps][8];
  __shared__ float o_s[kWarps][8][D];
  pdl_launch_dependents(); // the next kernel may launch; it waits for this one in its own pdl_wait
  pdl_wait();

  const attention_work_item item = a.items[blockIdx.x];
  if (item.q_len <= 0)
    return;
  const int kv_head = blockIdx.y, split = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  const int group = a.num_q_heads / a.num_kv_heads;
  const int item_tokens = min(item.q_len, ROWS / group);
  const int valid_rows = item_tokens * group;
  const int kv_len = item.q_pos + item_tokens;
  const int num_groups = (kv_len + kGroupKeys - 1) / kGroupKeys;
  // Groups per split: a multiple of the warp count, so the warps of a block get even shares and
  // a short context (graphs are captured with the splits of the longest) uses few splits; the
  // rest only write an empty partial, which the combine skips.
  int per_split = (num_groups + a.num_splits - 1) / a.num_splits;
  per_split = (per_split + kWarps - 1) / kWarps * kWarps;
  const int grp_begin = split * per_split;
  const int grp_end = min(num_groups, grp_begin + per_split);

  // Q fragments of row g (rows 8..15 of the m16 tile are zero): chunk j of the row holds dims
  // [32j + 8 t4, +8), the k-steps 2j (words x, y) and 2j + 1 (words z, w).
  uint32_t qa[kKSteps][2];
  {
    uint4 chunk[kKChunks];
    if (g < valid_rows && grp_begin < grp_end) {
      const int token = g / group, head = kv_head * group + g % group;
      const T* src = static_cast<const T*>(a.q) + int64_t(item.q_row + token) * a.q_stride + int64_t(head) * D + 8 * t4;
#pragma unroll
      for (int j = 0; j < kKChunks; ++j)
        chunk[j] = load16(src + 32 * j);
    } else {
#pragma unroll
      for (int j = 0; j < kKChunks; ++j)
        chunk[j] = make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int j = 0; j < kKChunks; ++j) {
      qa[2 * j][0] = chunk[j].x;
      qa[2 * j][1] = chunk[j].y;
      qa[2 * j + 1][0] = chunk[j].z;
      qa[2 * j + 1][1] = chunk[j].w;
    }
  }

  const float qk_scale = a.scale * kLog2e;
  const int last_key = item.q_pos + g / group; // causal limit of row g
  const bool row_valid = g < valid_rows;
  const int32_t* table = a.block_tables + int64_t(item.seq) * (*a.block_table_stride);
  const int bs = a.block_size;
  const bool aligned_blocks = bs % kGroupKeys == 0;
  const int64_t slot_stride = int64_t(a.num_kv_heads) * D;
  const T* k_base = static_cast<const T*>(a.key_cache) + int64_t(kv_head) * D;
  const T* v_base = static_cast<const T*>(a.value_cache) + int64_t(kv_head) * D;

  float o[kVWords][4]; // O^T: m-tile w, c0/c2 -> query row 2 t4, c1/c3 -> row 2 t4 + 1
#pragma unroll
  for (int w = 0; w < kVWords; ++w)
    o[w][0] = o[w][1] = o[w][2] = o[w][3] = 0.0f;
  float m_run = -INFINITY, l_run = 0.0f; // row g, log2 units

  // Block-table entry of the warp's next group, looked up one group ahead so that the K/V
  // loads of a group wait for one memory round trip, not two.
  auto table_entry = [&](int grp) -> int32_t {
    return aligned_blocks && grp < grp_end ? __ldg(table + grp * kGroupKeys / bs) : 0;
  };
  int32_t next_entry = table_entry(grp_begin + warp);
  for (int grp = grp_begin + warp; grp < grp_end; grp += kWarps) {
    const int key0 = grp * kGroupKeys;
    const int64_t group_slot = int64_t(next_entry) * bs + key0 % bs; // used when aligned_blocks
    next_entry = table_entry(grp + kWarps);
    auto slot_of = [&](int k) -> int64_t {
      const int key = key0 + k;
      return aligned_blocks ? group_slot + k : int64_t(table[key / bs]) * bs + key % bs;
    };
    // K rows g and g + 8 (the two n-tiles), V rows 2 t4, 2 t4 + 1, 2 t4 + 8, 2 t4 + 9.
    uint4 kr[2][kKChunks];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int k = g + 8 * h;
      if (key0 + k < kv_len) {
        const T* src = k_base + slot_of(k) * slot_stride + 8 * t4;
#pragma unroll
        for (int j = 0; j < kKChunks; ++j)
          kr[h][j] = load16(src + 32 * j);
      } else {
#pragma unroll
        for (int j = 0; j < kKChunks; ++j)
          kr[h][j] = make_uint4(0, 0, 0, 0);
      }
    }
    uint32_t vr[4][kVWords]; // word w holds elements 2w, 2w + 1 (dims v_dim(g, 2w), v_dim(g, 2w + 1))
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int k = 2 * t4 + (i & 1) + 8 * (i >> 1);
      if (key0 + k < kv_len) {
        const T* src = v_base + slot_of(k) * slot_stride;
        if constexpr (D >= 64) {
#pragma unroll
          for (int c = 0; c < D / 64; ++c) {
            const uint4 v = load16(src + 64 * c + 8 * g);
            vr[i][4 * c] = v.x;
            vr[i][4 * c + 1] = v.y;
            vr[i][4 * c + 2] = v.z;
            vr[i][4 * c + 3] = v.w;
          }
        } else {
          static_assert(D == 32, "head_dim 32, 64 or 128");
          const uint2 v = load8(src + 4 * g);
          vr[i][0] = v.x;
          vr[i][1] = v.y;
        }
      } else {
#pragma unroll
        for (int w = 0; w < kVWords; ++w)
          vr[i][w] = 0u; // zero V: a zero weight times stale bits must stay finite
      }
    }

    // S = Q K^T for keys 8h + 2 t4 + {0, 1} of row g.
    float s[2][4];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      s[h][0] = s[h][1] = s[h][2] = s[h][3] = 0.0f;
#pragma unroll
      for (int ks = 0; ks < kKSteps; ++ks) {
        const uint32_t afrag[4] = {qa[ks][0], 0u, qa[ks][1], 0u};
        const uint4& kc = kr[h][ks / 2];
        mma_16816<T>(s[h], afrag, (ks & 1) ? kc.z : kc.x, (ks & 1) ? kc.w : kc.y);
      }
    }

    // Online softmax of row g over these 16 keys (the four lanes of a quad hold the row).
    float p[2][2];
    float tile_max = -INFINITY;
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int key = key0 + 8 * h + 2 * t4 + c;
        p[h][c] = (row_valid && key <= last_key) ? s[h][c] * qk_scale : -INFINITY;
        tile_max = fmaxf(tile_max, p[h][c]);
      }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
    const float m_new = fmaxf(m_run, tile_max);
    const float alpha = m_new == -INFINITY ? 1.0f : exp2f(m_run - m_new);
    float sum = 0.0f;
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        p[h][c] = m_new == -INFINITY ? 0.0f : exp2f(p[h][c] - m_new);
        sum += p[h][c];
      }
    l_run = l_run * alpha + sum;
    m_run = m_new;
    // O^T holds query rows 2 t4 and 2 t4 + 1: their factors live in quads 2 t4 and 2 t4 + 1.
    const float alpha0 = __shfl_sync(0xffffffffu, alpha, 8 * t4);
    const float alpha1 = __shfl_sync(0xffffffffu, alpha, 8 * t4 + 4);
#pragma unroll
    for (int w = 0; w < kVWords; ++w) {
      o[w][0] *= alpha0;
      o[w][1] *= alpha1;
      o[w][2] *= alpha0;
      o[w][3] *= alpha1;
    }

    // P^T fragments, split into a 16-bit value and its rounding error.
    const uint32_t p_hi0 = pack_pair<T>(p[0][0], p[0][1]);
    const uint32_t p_hi1 = pack_pair<T>(p[1][0], p[1][1]);
    const float2 r0 = unpack_pair<T>(p_hi0), r1 = unpack_pair<T>(p_hi1);
    const uint32_t p_lo0 = pack_pair<T>(p[0][0] - r0.x, p[0][1] - r0.y);
    const uint32_t p_lo1 = pack_pair<T>(p[1][0] - r1.x, p[1][1] - r1.y);

    // O^T += V^T P^T, one m-tile (16 dims) per V word.
#pragma unroll
    for (int w = 0; w < kVWords; ++w) {
      const uint32_t va[4] = {pair_low(vr[0][w], vr[1][w]), pair_high(vr[0][w], vr[1][w]),
                              pair_low(vr[2][w], vr[3][w]), pair_high(vr[2][w], vr[3][w])};
      mma_16816<T>(o[w], va, p_hi0, p_hi1);
      mma_16816<T>(o[w], va, p_lo0, p_lo1);
    }
  }

  // Merge the four warps (and write the split's partial or the output).
  l_run += __shfl_xor_sync(0xffffffffu, l_run, 1);
  l_run += __shfl_xor_sync(0xffffffffu, l_run, 2);
  if (t4 == 0) {
    m_s[warp][g] = m_run;
    l_s[warp][g] = l_run;
  }
#pragma unroll
  for (int w = 0; w < kVWords; ++w) {
    const int d0 = v_dim<D>(g, 2 * w), d1 = v_dim<D>(g, 2 * w + 1);
    o_s[warp][2 * t4][d0] = o[w][0];
    o_s[warp][2 * t4 + 1][d0] = o[w][1];
    o_s[warp][2 * t4][d1] = o[w][2];
    o_s[warp][2 * t4 + 1][d1] = o[w][3];
  }
  __syncthreads();

  if (a.num_splits == 1) {
    T* out = static_cast<T*>(a.out);
    for (int e = threadIdx.x; e < valid_rows * D; e += kThreads) {
      const int r = e / D, d = e % D;
      float m_max = -INFINITY;
#pragma unroll
      for (int w = 0; w < kWarps; ++w)
        m_max = fmaxf(m_max, m_s[w][r]);
      float num = 0.0f, den = 0.0f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        const float f = m_s[w][r] == -INFINITY ? 0.0f : exp2f(m_s[w][r] - m_max);
        num += f * o_s[w][r][d];
        den += f * l_s[w][r];
      }
      const int token = r / group, head = kv_head * group + r % group;
      out[int64_t(item.q_row + token) * a.out_stride + int64_t(head) * D + d] = from_float<T>(den > 0.0f ? num / den : 0.0f);
    }
    return;
  }
  float* part = a.split_scratch +
                ((int64_t(blockIdx.x) * gridDim.y + kv_head) * a.num_splits + split) * int64_t(ROWS * (D + 2));
  for (int e = threadIdx.x; e < ROWS * D; e += kThreads) {
    const int r = e / D, d = e % D;
    float m_max = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w)
      m_max = fmaxf(m_max, m_s[w][r]);
    float num = 0.0f, den = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float f = m_s[w][r] == -INFINITY ? 0.0f : exp2f(m_s[w][r] - m_max);
      num += f * o_s[w][r][d];
      den += f * l_s[w][r];
    }
    part[r * D + d] = num;
    if (d == 0) {
      part[ROWS * D + r] = m_max;
      part[ROWS * D + ROWS + r] = den;
    }
  }
}

template <typename T, int D>
void launch_for_rows(const paged_attention_args& a, int rows, cudaStream_t stream) {
  const dim3 grid(unsigned(a.num_items), unsigned(a.num_kv_heads), unsigned(a.num_splits));
  if (rows == 4)
    launch_pdl(decode_mma_kernel<T, D, 4>, grid, dim3(kThreads), 0, stream, a);
  else
    launch_pdl(decode_mma_kernel<T, D, 8>, grid, dim3(kThreads), 0, stream, a);
  ACTORSERVE_CUDA_CHECK_LAUNCH("decode_mma_kernel");
}

template <typename T>
void launch_for_dim(const paged_attention_args& a, int rows, cudaStream_t stream) {
  switch (a.head_dim) {
    case 32:
      return launch_for_rows<T, 32>(a, rows, stream);
    case 64:
      return launch_for_rows<T, 64>(a, rows, stream);
    default:
      return launch_for_rows<T, 128>(a, rows, stream);
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

} // namespace

bool decode_mma_supported(const paged_attention_args& a, int rows, dtype type) {
  if (type != dtype::bf16 && type != dtype::f16)
    return false;
  if (a.head_dim != 32 && a.head_dim != 64 && a.head_dim != 128)
    return false;
  if (rows != 4 && rows != 8)
    return false;
  // 16-byte loads of q rows and of cache rows.
  return a.q_stride % 8 == 0 && aligned16(a.q) && aligned16(a.key_cache) && aligned16(a.value_cache);
}

void launch_decode_mma(const paged_attention_args& a, int rows, dtype type, cudaStream_t stream) {
  if (type == dtype::bf16)
    launch_for_dim<__nv_bfloat16>(a, rows, stream);
  else
    launch_for_dim<__half>(a, rows, stream);
}

} // namespace actorserve::gpu::detail

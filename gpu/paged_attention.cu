// Paged attention for mixed batches (see paged_attention.hpp). One block of 128 threads per
// (work item, KV head, key split). The block keeps the item's query rows (tokens x the heads
// of one GQA group) in shared memory in fp32, streams K/V tiles of the sequence through shared
// memory with cp.async (two stages, so the next tile loads while this one is used), and keeps
// an online softmax per row. Arithmetic in fp32 on the CUDA cores: decode is bound by reading
// the cache, and this keeps one code path for bf16, fp16 and fp32.
#include "gpu/cuda_check.hpp"
#include "gpu/device_math.cuh"
#include "gpu/paged_attention.hpp"
#include "gpu/paged_attention_kernels.hpp"
#include "gpu/pdl.cuh"

namespace actorserve::gpu {
namespace {

constexpr int kThreads = 128;
constexpr int kMaxSplits = 64; // combine_splits_kernel keeps one weight per split and row
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ void cp_async_16(void* smem_dst, const void* global_src, int src_bytes) {
  const unsigned dst = unsigned(__cvta_generic_to_shared(smem_dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(global_src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

/// 16 bytes of T (8 bf16/fp16 or 4 fp32) from shared memory, widened to fp32.
template <typename T>
__device__ __forceinline__ void load_chunk(const T* src, float* dst) {
  const uint4 raw = *reinterpret_cast<const uint4*>(src);
  const T* v = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int i = 0; i < int(16 / sizeof(T)); ++i)
    dst[i] = to_float(v[i]);
}

template <typename T, int D, int ROWS, int KEYS>
struct tile_config {
  static constexpr int kChunk = 16 / int(sizeof(T)); // elements per 16-byte chunk
  static constexpr int kChunks = D / kChunk;         // chunks per head row
  // Small tiles (decode: a few query rows) compute scores with float4 loads of four query rows:
  // kLanes consecutive threads share one key and split its head dim, then shuffle-reduce.
  // Large tiles (prefill) use a register-blocked rows x keys tiling with q from shared memory.
  static constexpr bool kSmall = ROWS <= 16;
  static constexpr int kLanes = kThreads / KEYS;
  static constexpr int kChunksPerLane = kSmall ? kChunks / kLanes : 1;
  static_assert(!kSmall || ROWS % 4 == 0, "small tiles read query rows as float4");
  // K/V smem rows padded so that the threads of one 8-thread phase of a 16-byte load hit
  // disjoint banks: small tiles read kLanes chunks of 8 / kLanes keys (row stride = 4 kLanes
  // words mod 32); large tiles read one chunk of 8 different keys (16-byte pad).
  static constexpr int kRowWords = D * int(sizeof(T)) / 4;
  static constexpr int kPadWords = kSmall ? (((4 * kLanes - kRowWords) % 32) + 32) % 32 : 4;
  static constexpr int kRowStride = D + kPadWords * 4 / int(sizeof(T));
  // Scores S[ROWS][KEYS] of large tiles: a thread owns kTR consecutive rows x kTK keys strided
  // by kKGroups.
  static constexpr int kRGroups = ROWS >= 32 ? 8 : (kThreads / KEYS < ROWS ? kThreads / KEYS : ROWS);
  static constexpr int kKGroups = kThreads / kRGroups;
  static constexpr int kTR = ROWS / kRGroups;
  static constexpr int kTK = KEYS / kKGroups > 0 ? KEYS / kKGroups : 1;
  // Output O[ROWS][D]: a thread owns kTR2 consecutive rows x one 16-byte column chunk.
  static constexpr int kDGroups = kChunks;
  static constexpr int kR2Full = kThreads / kDGroups;
  static constexpr int kR2Groups = kR2Full < ROWS ? kR2Full : ROWS;
  static constexpr int kTR2 = ROWS / kR2Groups;
  // Online softmax: kTPR consecutive threads per row.
  static constexpr int kTPR = kThreads / ROWS;

  // Query rows in smem as [d][ROWS] floats; small tiles add 4 floats after every chunk of d so
  // the kLanes lanes of a key (reading different chunks) hit different banks.
  static constexpr int kQPad = kSmall ? 4 : 0;
  static constexpr size_t kQBytes = (size_t(D) * ROWS + size_t(kChunks) * kQPad) * sizeof(float);
  __host__ __device__ static constexpr int q_offset(int d, int row) { return d * ROWS + (d / kChunk) * kQPad + row; }
  static constexpr size_t kStageBytes = size_t(2) * KEYS * kRowStride * sizeof(T); // K and V
  static constexpr size_t kPBytes = size_t(KEYS) * ROWS * sizeof(float);
  static constexpr size_t kSmemBytes = kQBytes + 2 * kStageBytes + kPBytes + 3 * ROWS * sizeof(float);

  static_assert(D % kChunk == 0, "head_dim must be a multiple of the 16-byte chunk");
  static_assert(kRowStride % kChunk == 0, "smem rows stay 16-byte aligned");
  static_assert(!kSmall || (kLanes >= 1 && kLanes <= 32 && kChunks % kLanes == 0 && kLanes * KEYS == kThreads),
                "small-tile score tiling");
  static_assert(kSmall || (kRGroups * kKGroups == kThreads && KEYS % kKGroups == 0 && ROWS % kRGroups == 0),
                "large-tile score tiling");
  static_assert(kThreads % kDGroups == 0 && ROWS % kR2Groups == 0, "output tiling");
  static_assert(kTPR >= 1 && kTPR <= 32 && ROWS * kTPR == kThreads, "softmax tiling");
};

template <typename T, int D, int ROWS, int KEYS>
__global__ void __launch_bounds__(kThreads) paged_attention_kernel(paged_attention_args a) {
  using cfg = tile_config<T, D, ROWS, KEYS>;
  constexpr int kChunk = cfg::kChunk, kChunks = cfg::kChunks, kRowStride = cfg::kRowStride;
  extern __shared__ __align__(16) unsigned char smem[];
  float* q_s = reinterpret_cast<float*>(smem);                               // [D][ROWS], pre-scaled
  T* kv_s = reinterpret_cast<T*>(smem + cfg::kQBytes);                      // [2 stages][K, V][KEYS][kRowStride]
  float* p_s = reinterpret_cast<float*>(smem + cfg::kQBytes + 2 * cfg::kStageBytes); // [KEYS][ROWS]
  float* m_s = p_s + KEYS * ROWS; // running max per row (log2 units)
  float* l_s = m_s + ROWS;        // running sum per row
  float* alpha_s = l_s + ROWS;    // rescale factor of this tile

  const attention_work_item item = a.items[blockIdx.x];
  if (item.q_len <= 0)
    return;
  const int kv_head = blockIdx.y, split = blockIdx.z;
  const int group = a.num_q_heads / a.num_kv_heads;
  const int item_tokens = min(item.q_len, ROWS / group);
  const int valid_rows = item_tokens * group;
  const int kv_len = item.q_pos + item_tokens; // keys the last query row needs
  const int num_tiles = (kv_len + KEYS - 1) / KEYS;
  const int tiles_per_split = (num_tiles + a.num_splits - 1) / a.num_splits;
  const int tile_begin = split * tiles_per_split;
  const int tile_end = min(num_tiles, tile_begin + tiles_per_split);
  const int32_t* block_table = a.block_tables + int64_t(item.seq) * (*a.block_table_stride);
  const T* key_cache = static_cast<const T*>(a.key_cache);
  const T* value_cache = static_cast<const T*>(a.value_cache);

  // Query rows, transposed to [d][row] so a thread reads its rows for one d at once.
  {
    const float q_scale = a.scale * kLog2e;
    const T* q = static_cast<const T*>(a.q);
    for (int e = threadIdx.x; e < ROWS * kChunks; e += kThreads) {
      const int row = e % ROWS, c = e / ROWS;
      float vals[kChunk];
      if (row < valid_rows) {
        const int token = row / group, head = kv_head * group + row % group;
        const T* src = q + int64_t(item.q_row + token) * a.q_stride + int64_t(head) * D + c * kChunk;
#pragma unroll
        for (int j = 0; j < kChunk; ++j)
          vals[j] = to_float(src[j]) * q_scale;
      } else {
#pragma unroll
        for (int j = 0; j < kChunk; ++j)
          vals[j] = 0.0f;
      }
#pragma unroll
      for (int j = 0; j < kChunk; ++j)
        q_s[cfg::q_offset(c * kChunk + j, row)] = vals[j];
    }
    if (threadIdx.x < ROWS) {
      m_s[threadIdx.x] = -INFINITY;
      l_s[threadIdx.x] = 0.0f;
    }
  }

  const int lane_key = threadIdx.x / cfg::kLanes, lane_part = threadIdx.x % cfg::kLanes;

  auto load_tile = [&](int tile, int stage) {
    T* k_dst = kv_s + size_t(stage) * 2 * KEYS * kRowStride;
    T* v_dst = k_dst + KEYS * kRowStride;
    for (int e = threadIdx.x; e < KEYS * kChunks; e += kThreads) {
      const int key = e / kChunks, c = e % kChunks;
      const int kv = tile * KEYS + key;
      const T* k_src = key_cache;
      const T* v_src = value_cache;
      int bytes = 0; // 0: zero-fill (keys past the end; zero V keeps 0 * V finite)
      if (kv < kv_len) {
        const int64_t slot = int64_t(block_table[kv / a.block_size]) * a.block_size + kv % a.block_size;
        const int64_t offset = (slot * a.num_kv_heads + kv_head) * D + c * kChunk;
        k_src += offset;
        v_src += offset;
        bytes = 16;
      }
      cp_async_16(k_dst + key * kRowStride + c * kChunk, k_src, bytes);
      cp_async_16(v_dst + key * kRowStride + c * kChunk, v_src, bytes);
    }
    cp_async_commit();
  };

  const int rg = threadIdx.x / cfg::kKGroups, kg = threadIdx.x % cfg::kKGroups;
  const int rg2 = threadIdx.x / cfg::kDGroups, dg = threadIdx.x % cfg::kDGroups;
  const bool pv_active = rg2 < cfg::kR2Groups;
  float o_acc[cfg::kTR2][kChunk];
#pragma unroll
  for (int r = 0; r < cfg::kTR2; ++r)
#pragma unroll
    for (int e = 0; e < kChunk; ++e)
      o_acc[r][e] = 0.0f;

  if (tile_begin < tile_end)
    load_tile(tile_begin, 0);
  for (int tile = tile_begin; tile < tile_end; ++tile) {
    const int stage = (tile - tile_begin) & 1;
    if (tile + 1 < tile_end) {
      load_tile(tile + 1, stage ^ 1);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const T* k_tile = kv_s + size_t(stage) * 2 * KEYS * kRowStride;
    const T* v_tile = k_tile + KEYS * kRowStride;

    if constexpr (cfg::kSmall) {
      // S = Q K^T: kLanes threads per key, each over its chunks of the head dim; one float4
      // broadcast load gives four rows' q for four FMAs.
      float acc[ROWS];
#pragma unroll
      for (int r = 0; r < ROWS; ++r)
        acc[r] = 0.0f;
#pragma unroll
      for (int i = 0; i < cfg::kChunksPerLane; ++i) {
        float kv[kChunk];
        load_chunk(k_tile + lane_key * kRowStride + (lane_part + cfg::kLanes * i) * kChunk, kv);
        const int d0 = (lane_part + cfg::kLanes * i) * kChunk;
#pragma unroll
        for (int e = 0; e < kChunk; ++e) {
          const float* q_row = q_s + cfg::q_offset(d0 + e, 0);
#pragma unroll
          for (int r = 0; r < ROWS; r += 4) {
            const float4 q4 = *reinterpret_cast<const float4*>(q_row + r);
            acc[r] = fmaf(q4.x, kv[e], acc[r]);
            acc[r + 1] = fmaf(q4.y, kv[e], acc[r + 1]);
            acc[r + 2] = fmaf(q4.z, kv[e], acc[r + 2]);
            acc[r + 3] = fmaf(q4.w, kv[e], acc[r + 3]);
          }
        }
      }
#pragma unroll
      for (int offset = cfg::kLanes / 2; offset > 0; offset >>= 1)
#pragma unroll
        for (int r = 0; r < ROWS; ++r)
          acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], offset);
      const int kv_index = tile * KEYS + lane_key;
#pragma unroll
      for (int r = 0; r < ROWS; ++r)
        if (r % cfg::kLanes == lane_part) {
          const bool valid = r < valid_rows && kv_index <= item.q_pos + r / group;
          p_s[lane_key * ROWS + r] = valid ? acc[r] : -INFINITY;
        }
    } else {
      // S = Q K^T for this thread's rows x keys.
      float s[cfg::kTR][cfg::kTK];
#pragma unroll
      for (int r = 0; r < cfg::kTR; ++r)
#pragma unroll
        for (int j = 0; j < cfg::kTK; ++j)
          s[r][j] = 0.0f;
#pragma unroll 2
      for (int c = 0; c < kChunks; ++c) {
        float kvals[cfg::kTK][kChunk];
#pragma unroll
        for (int j = 0; j < cfg::kTK; ++j)
          load_chunk(k_tile + (kg + j * cfg::kKGroups) * kRowStride + c * kChunk, kvals[j]);
#pragma unroll
        for (int e = 0; e < kChunk; ++e) {
          const float* q_row = q_s + (c * kChunk + e) * ROWS + rg * cfg::kTR;
          float qv[cfg::kTR];
          if constexpr (cfg::kTR % 4 == 0) {
#pragma unroll
            for (int r = 0; r < cfg::kTR; r += 4) {
              const float4 v4 = *reinterpret_cast<const float4*>(q_row + r);
              qv[r] = v4.x, qv[r + 1] = v4.y, qv[r + 2] = v4.z, qv[r + 3] = v4.w;
            }
          } else {
#pragma unroll
            for (int r = 0; r < cfg::kTR; ++r)
              qv[r] = q_row[r];
          }
#pragma unroll
          for (int r = 0; r < cfg::kTR; ++r)
#pragma unroll
            for (int j = 0; j < cfg::kTK; ++j)
              s[r][j] = fmaf(qv[r], kvals[j][e], s[r][j]);
        }
      }
#pragma unroll
      for (int r = 0; r < cfg::kTR; ++r) {
        const int row = rg * cfg::kTR + r;
        const int last_key = item.q_pos + row / group; // causal: this row sees keys <= last_key
#pragma unroll
        for (int j = 0; j < cfg::kTK; ++j) {
          const int key = kg + j * cfg::kKGroups;
          const int kv = tile * KEYS + key;
          p_s[key * ROWS + row] = (row < valid_rows && kv <= last_key) ? s[r][j] : -INFINITY;
        }
      }
    }
    __syncthreads();

    // Online softmax over this tile, kTPR threads per row.
    {
      const int row = threadIdx.x / cfg::kTPR, sub = threadIdx.x % cfg::kTPR;
      float tile_max = -INFINITY;
      for (int key = sub; key < KEYS; key += cfg::kTPR)
        tile_max = fmaxf(tile_max, p_s[key * ROWS + row]);
#pragma unroll
      for (int offset = cfg::kTPR / 2; offset > 0; offset >>= 1)
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, offset));
      const float m_old = m_s[row];
      const float m_new = fmaxf(m_old, tile_max);
      float sum = 0.0f;
      for (int key = sub; key < KEYS; key += cfg::kTPR) {
        const float p = m_new == -INFINITY ? 0.0f : exp2f(p_s[key * ROWS + row] - m_new);
        p_s[key * ROWS + row] = p;
        sum += p;
      }
#pragma unroll
      for (int offset = cfg::kTPR / 2; offset > 0; offset >>= 1)
        sum += __shfl_xor_sync(0xffffffffu, sum, offset);
      if (sub == 0) {
        const float alpha = m_new == -INFINITY ? 1.0f : exp2f(m_old - m_new);
        alpha_s[row] = alpha;
        l_s[row] = l_s[row] * alpha + sum;
        m_s[row] = m_new;
      }
    }
    __syncthreads();

    // O = alpha * O + P V for this thread's rows x 16-byte column chunk.
    if (pv_active) {
#pragma unroll
      for (int r = 0; r < cfg::kTR2; ++r) {
        const float alpha = alpha_s[rg2 * cfg::kTR2 + r];
#pragma unroll
        for (int e = 0; e < kChunk; ++e)
          o_acc[r][e] *= alpha;
      }
#pragma unroll 4
      for (int key = 0; key < KEYS; ++key) {
        float vv[kChunk];
        load_chunk(v_tile + key * kRowStride + dg * kChunk, vv);
        const float* p_row = p_s + key * ROWS + rg2 * cfg::kTR2;
#pragma unroll
        for (int r = 0; r < cfg::kTR2; ++r) {
          const float p = p_row[r];
#pragma unroll
          for (int e = 0; e < kChunk; ++e)
            o_acc[r][e] = fmaf(p, vv[e], o_acc[r][e]);
        }
      }
    }
    __syncthreads(); // the next iteration's load overwrites the other stage; p_s is rewritten
  }
  __syncthreads();

  if (a.num_splits == 1) {
    if (!pv_active)
      return;
    T* out = static_cast<T*>(a.out);
#pragma unroll
    for (int r = 0; r < cfg::kTR2; ++r) {
      const int row = rg2 * cfg::kTR2 + r;
      if (row >= valid_rows)
        continue;
      const float l = l_s[row];
      const float inv_l = l > 0.0f ? 1.0f / l : 0.0f;
      const int token = row / group, head = kv_head * group + row % group;
      T* dst = out + int64_t(item.q_row + token) * a.out_stride + int64_t(head) * D + dg * kChunk;
#pragma unroll
      for (int e = 0; e < kChunk; ++e)
        dst[e] = from_float<T>(o_acc[r][e] * inv_l);
    }
    return;
  }
  // Split: unnormalised partial output plus (max, sum) per row, merged by combine_kernel.
  float* part = a.split_scratch +
                ((int64_t(blockIdx.x) * gridDim.y + kv_head) * a.num_splits + split) * int64_t(ROWS * (D + 2));
  if (pv_active) {
#pragma unroll
    for (int r = 0; r < cfg::kTR2; ++r) {
      const int row = rg2 * cfg::kTR2 + r;
#pragma unroll
      for (int e = 0; e < kChunk; ++e)
        part[row * D + dg * kChunk + e] = o_acc[r][e];
    }
  }
  if (threadIdx.x < ROWS) {
    part[ROWS * D + threadIdx.x] = m_s[threadIdx.x];
    part[ROWS * D + ROWS + threadIdx.x] = l_s[threadIdx.x];
  }
}

/// Merges the key splits of one (item, KV head). One warp per row turns the splits' maxima into
/// weights exp2(m_s - max) and the softmax denominator (lanes over splits), then every output
/// element is one weighted sum over the splits with a nonzero weight (empty splits, which a
/// short context leaves behind, are dropped from the list first).
template <typename T, int D, int ROWS>
__global__ void __launch_bounds__(kThreads) combine_splits_kernel(paged_attention_args a) {
  static_assert(kMaxSplits <= 64, "two splits per lane");
  static_assert(D % 4 == 0 && ROWS % 4 == 0, "float4 partials");
  __shared__ float weight_s[ROWS][kMaxSplits];
  __shared__ float inv_den_s[ROWS];
  __shared__ int active_s[kMaxSplits];
  __shared__ int num_active_s;
  pdl_launch_dependents(); // the next kernel may launch; it waits for this one in its own pdl_wait
  pdl_wait();
  const attention_work_item item = a.items[blockIdx.x];
  if (item.q_len <= 0)
    return;
  const int kv_head = blockIdx.y, splits = a.num_splits;
  const int group = a.num_q_heads / a.num_kv_heads;
  const int valid_rows = min(item.q_len, ROWS / group) * group;
  const int64_t part_floats = int64_t(ROWS) * (D + 2);
  const float* base = a.split_scratch + (int64_t(blockIdx.x) * gridDim.y + kv_head) * splits * part_floats;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int r = warp; r < valid_rows; r += kThreads / 32) {
    float m[2], l[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int s = lane + 32 * i;
      m[i] = s < splits ? base[s * part_floats + ROWS * D + r] : -INFINITY;
      l[i] = s < splits ? base[s * part_floats + ROWS * D + ROWS + r] : 0.0f;
    }
    const float m_max = warp_max(fmaxf(m[0], m[1]));
    float den = 0.0f;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const float w = m[i] == -INFINITY ? 0.0f : exp2f(m[i] - m_max);
      if (lane + 32 * i < splits)
        weight_s[r][lane + 32 * i] = w;
      den += w * l[i];
    }
    den = warp_sum(den);
    if (lane == 0)
      inv_den_s[r] = den > 0.0f ? 1.0f / den : 0.0f;
  }
  __syncthreads();
  // Splits with a nonzero weight in some row, compacted (a short context leaves most empty).
  if (warp == 0) {
    bool used[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int s = lane + 32 * i;
      used[i] = false;
      for (int r = 0; r < valid_rows && s < splits; ++r)
        used[i] = used[i] || weight_s[r][s] != 0.0f;
    }
    const unsigned mask0 = __ballot_sync(0xffffffffu, used[0]), mask1 = __ballot_sync(0xffffffffu, used[1]);
    const unsigned below = (1u << lane) - 1u;
    if (used[0])
      active_s[__popc(mask0 & below)] = lane;
    if (used[1])
      active_s[__popc(mask0) + __popc(mask1 & below)] = lane + 32;
    if (lane == 0)
      num_active_s = __popc(mask0) + __popc(mask1);
  }
  __syncthreads();
  // Each thread sums four consecutive dims of one row over the active splits, eight splits'
  // float4 loads in flight at a time (the partials were just written by other blocks: L2).
  const int num_active = num_active_s;
  T* out = static_cast<T*>(a.out);
  for (int e = threadIdx.x; e < valid_rows * (D / 4); e += kThreads) {
    const int row = e / (D / 4), d = 4 * (e % (D / 4));
    const float* src = base + row * D + d;
    float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    for (int i = 0; i < num_active; i += 8) {
      float4 v[8];
      float w[8];
#pragma unroll
      for (int u = 0; u < 8; ++u) {
        const int s = i + u < num_active ? active_s[i + u] : -1;
        w[u] = s >= 0 ? weight_s[row][s] : 0.0f;
        v[u] = s >= 0 ? __ldcg(reinterpret_cast<const float4*>(src + s * part_floats)) : make_float4(0, 0, 0, 0);
      }
#pragma unroll
      for (int u = 0; u < 8; ++u) {
        acc.x += w[u] * v[u].x;
        acc.y += w[u] * v[u].y;
        acc.z += w[u] * v[u].z;
        acc.w += w[u] * v[u].w;
      }
    }
    const float inv = inv_den_s[row];
    const int token = row / group, head = kv_head * group + row % group;
    T* dst = out + int64_t(item.q_row + token) * a.out_stride + int64_t(head) * D + d;
    dst[0] = from_float<T>(acc.x * inv);
    dst[1] = from_float<T>(acc.y * inv);
    dst[2] = from_float<T>(acc.z * inv);
    dst[3] = from_float<T>(acc.w * inv);
  }
}

template <typename T, int D, int ROWS>
void launch_combine(const paged_attention_args& a, cudaStream_t stream) {
  launch_pdl(combine_splits_kernel<T, D, ROWS>, dim3(unsigned(a.num_items), unsigned(a.num_kv_heads)), dim3(kThreads), 0,
             stream, a);
  ACTORSERVE_CUDA_CHECK_LAUNCH("combine_splits_kernel");
}

template <typename T, int D, int ROWS, int KEYS>
void launch_typed(const paged_attention_args& a, cudaStream_t stream) {
  using cfg = tile_config<T, D, ROWS, KEYS>;
  static const bool attribute_set = [] {
    ACTORSERVE_CUDA_CHECK(cudaFuncSetAttribute(paged_attention_kernel<T, D, ROWS, KEYS>,
                                               cudaFuncAttributeMaxDynamicSharedMemorySize, int(cfg::kSmemBytes)));
    return true;
  }();
  (void)attribute_set;
  dim3 grid(unsigned(a.num_items), unsigned(a.num_kv_heads), unsigned(a.num_splits));
  paged_attention_kernel<T, D, ROWS, KEYS><<<grid, kThreads, cfg::kSmemBytes, stream>>>(a);
  ACTORSERVE_CUDA_CHECK_LAUNCH("paged_attention_kernel");
  if (a.num_splits > 1)
    launch_combine<T, D, ROWS>(a, stream);
}

/// Query rows (tokens x group heads) of a tile.
int tile_rows(attention_tile tile, int32_t group_size, int32_t head_dim) {
  if (tile == attention_tile::large)
    return head_dim <= 128 ? 64 : 32;
  for (int rows : {4, 8, 16})
    if (group_size <= rows)
      return rows;
  return 0;
}

/// Keys per small tile: 32 (four lanes per key), or more when the head dim has fewer than four
/// 16-byte chunks (each lane needs at least one).
template <typename T, int D, int ROWS>
constexpr int small_tile_keys() {
  const int min_keys = kThreads / (D / (16 / int(sizeof(T))));
  return min_keys > 32 ? min_keys : 32;
}

template <typename T, int D>
void launch_for_dim(const paged_attention_args& a, attention_tile tile, int rows, dtype type, cudaStream_t stream) {
  if (tile == attention_tile::small && detail::decode_mma_supported(a, rows, type)) {
    detail::launch_decode_mma(a, rows, type, stream);
    if (a.num_splits > 1) {
      if (rows == 4)
        launch_combine<T, D, 4>(a, stream);
      else
        launch_combine<T, D, 8>(a, stream);
    }
    return;
  }
  if (tile == attention_tile::large && detail::prefill_mma_supported(a, rows, type))
    return detail::launch_prefill_mma(a, type, stream);
  constexpr int kLargeRows = D <= 128 ? 64 : 32;
  constexpr int kLargeKeys = D <= 128 ? 64 : 32;
  switch (rows) {
    case 4:
      return launch_typed<T, D, 4, small_tile_keys<T, D, 4>()>(a, stream);
    case 8:
      return launch_typed<T, D, 8, small_tile_keys<T, D, 8>()>(a, stream);
    case 16:
      return launch_typed<T, D, 16, small_tile_keys<T, D, 16>()>(a, stream);
    case kLargeRows:
      return launch_typed<T, D, kLargeRows, kLargeKeys>(a, stream);
    default:
      throw std::invalid_argument("paged_attention: no tile of " + std::to_string(rows) + " rows");
  }
}

} // namespace

bool attention_supports_head_dim(int32_t head_dim) {
  return head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128 || head_dim == 256;
}

int32_t attention_tile_tokens(attention_tile tile, int32_t group_size, int32_t head_dim) {
  if (group_size <= 0)
    return 0;
  return tile_rows(tile, group_size, head_dim) / group_size;
}

int64_t attention_split_scratch_floats(attention_tile tile, int32_t group_size, int32_t head_dim, int32_t num_items,
                                       int32_t num_kv_heads, int32_t num_splits) {
  if (num_splits <= 1)
    return 0;
  return int64_t(num_items) * num_kv_heads * num_splits * tile_rows(tile, group_size, head_dim) * (head_dim + 2);
}

void launch_paged_attention(const paged_attention_args& a, attention_tile tile, dtype type, cudaStream_t stream) {
  if (a.num_items <= 0)
    return;
  if (!attention_supports_head_dim(a.head_dim))
    throw std::invalid_argument("paged_attention: head_dim " + std::to_string(a.head_dim) + " is not supported");
  if (a.num_kv_heads <= 0 || a.num_q_heads % a.num_kv_heads != 0)
    throw std::invalid_argument("paged_attention: num_q_heads must be a multiple of num_kv_heads");
  const int group = a.num_q_heads / a.num_kv_heads;
  const int rows = tile_rows(tile, group, a.head_dim);
  if (rows == 0 || rows < group)
    throw std::invalid_argument("paged_attention: GQA group of " + std::to_string(group) + " does not fit the tile");
  if (a.num_splits < 1 || (a.num_splits > 1 && a.split_scratch == nullptr))
    throw std::invalid_argument("paged_attention: num_splits > 1 needs split_scratch");
  if (a.num_splits > kMaxSplits)
    throw std::invalid_argument("paged_attention: at most " + std::to_string(kMaxSplits) + " key splits");
  ACTORSERVE_DISPATCH_FLOAT(type, "paged_attention", {
    switch (a.head_dim) {
      case 16:
        launch_for_dim<scalar_t, 16>(a, tile, rows, type, stream);
        break;
      case 32:
        launch_for_dim<scalar_t, 32>(a, tile, rows, type, stream);
        break;
      case 64:
        launch_for_dim<scalar_t, 64>(a, tile, rows, type, stream);
        break;
      case 128:
        launch_for_dim<scalar_t, 128>(a, tile, rows, type, stream);
        break;
      case 256:
        launch_for_dim<scalar_t, 256>(a, tile, rows, type, stream);
        break;
    }
  });
}

} // namespace actorserve::gpu

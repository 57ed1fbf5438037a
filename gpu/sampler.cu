// GPU sampler: one block of 1024 threads per row. See sampler.hpp for the rules; every choice
// below mirrors model/sampling.cpp. Reductions use fixed trees and integer (fixed-point)
// histograms, so a row samples the same token in any batch and on every run.
#include "gpu/cuda_check.hpp"
#include "gpu/device_math.cuh"
#include "gpu/sampler.hpp"

namespace actorserve::gpu {
namespace {

constexpr int kThreads = 1024;
constexpr double kMassScale = 1099511627776.0; // 2^40: probabilities <= 1 as fixed point

struct shared_state {
  float f_scratch[32];
  double d_scratch[32];
  float best_value[32];
  int32_t best_index[32];
  unsigned long long hist[256];
  uint32_t prefix;
  unsigned long long remaining;
  unsigned long long above;
  int32_t found;
  int32_t fail;
  double scan[kThreads];
};

/// Order-preserving map of a float to an unsigned key (larger float, larger key).
__device__ __forceinline__ uint32_t ordered_key(float f) {
  const uint32_t b = __float_as_uint(f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

/// Block argmax with the CPU's tie rule (lowest index among equal values); all threads get it.
__device__ void block_argmax(float& value, int32_t& index, shared_state& sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    const float v = __shfl_xor_sync(0xffffffffu, value, offset);
    const int32_t i = __shfl_xor_sync(0xffffffffu, index, offset);
    if (v > value || (v == value && i < index))
      value = v, index = i;
  }
  __syncthreads();
  if (lane == 0)
    sh.best_value[warp] = value, sh.best_index[warp] = index;
  __syncthreads();
  value = sh.best_value[lane];
  index = sh.best_index[lane];
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    const float v = __shfl_xor_sync(0xffffffffu, value, offset);
    const int32_t i = __shfl_xor_sync(0xffffffffu, index, offset);
    if (v > value || (v == value && i < index))
      value = v, index = i;
  }
}

/// Radix select from the top over the finite entries of `row`: the key of the element at which
/// the descending cumulative weight first reaches `target` (weight: 1 per element when
/// `by_mass` is false, else the fixed-point probability exp(v - max_v)). Returns false when
/// the total weight never reaches `target`. `above` gets the weight of keys greater than it.
__device__ bool radix_select_top(const float* row, int32_t n, bool by_mass, float max_v, unsigned long long target,
                                 uint32_t& key_out, unsigned long long& above, shared_state& sh) {
  if (threadIdx.x == 0) {
    sh.prefix = 0;
    sh.remaining = target;
    sh.above = 0;
    sh.fail = 0;
  }
  uint32_t mask = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += kThreads)
      sh.hist[b] = 0;
    __syncthreads();
    const uint32_t prefix = sh.prefix;
    for (int32_t i = threadIdx.x; i < n; i += kThreads) {
      const float v = row[i];
      if (!(v > -INFINITY))
        continue;
      const uint32_t key = ordered_key(v);
      if ((key & mask) != prefix)
        continue;
      const unsigned long long w =
          by_mass ? (unsigned long long)(exp(double(v) - double(max_v)) * kMassScale) : 1ull;
      atomicAdd(&sh.hist[(key >> shift) & 255u], w);
    }
    __syncthreads();
    if (threadIdx.x == 0 && !sh.fail) {
      unsigned long long acc = 0;
      int digit = -1;
      for (int d = 255; d >= 0; --d) {
        if (acc + sh.hist[d] >= sh.remaining) {
          digit = d;
          break;
        }
        acc += sh.hist[d];
      }
      if (digit < 0) {
        sh.fail = 1;
      } else {
        sh.remaining -= acc;
        sh.above += acc;
        sh.prefix |= uint32_t(digit) << shift;
      }
    }
    mask |= 255u << shift;
    __syncthreads();
  }
  key_out = sh.prefix;
  above = sh.above;
  const bool ok = !sh.fail;
  __syncthreads();
  return ok;
}

/// Exclusive prefix sum of sh.scan[0..kThreads) in place, by one thread in index order (a fixed
/// order keeps the sampler deterministic); returns the total to thread 0. Block-wide call.
__device__ double exclusive_scan(shared_state& sh) {
  __syncthreads();
  double total = 0.0;
  if (threadIdx.x == 0) {
    for (int t = 0; t < kThreads; ++t) {
      const double c = sh.scan[t];
      sh.scan[t] = total;
      total += c;
    }
  }
  __syncthreads();
  return total;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) sampler_kernel(sampler_args a) {
  __shared__ shared_state sh;
  const sampler_row p = a.rows[blockIdx.x];
  const int32_t n = a.vocab_size;
  const T* raw = static_cast<const T*>(a.logits) + int64_t(p.logits_row) * a.logits_stride;
  float* work = a.work + int64_t(blockIdx.x) * n;
  const bool penalties = (p.repetition_penalty != 1.0f && p.repetition_penalty > 0.0f && p.repetition_count > 0) ||
                         ((p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) && p.frequency_count > 0);
  const bool fast_greedy = p.greedy && !penalties;

  // Raw statistics: argmax (the CPU's max_v) and the log-sum-exp for logprobs.
  float best = -INFINITY;
  int32_t best_index = 0x7fffffff;
  for (int32_t i = threadIdx.x; i < n; i += kThreads) {
    const float v = to_float(raw[i]);
    if (!fast_greedy)
      work[i] = v;
    if (v > best)
      best = v, best_index = i;
  }
  block_argmax(best, best_index, sh);
  const float raw_max = best;
  double sum = 0.0;
  for (int32_t i = threadIdx.x; i < n; i += kThreads)
    sum += exp(double(to_float(raw[i])) - double(raw_max));
  const double lse = double(raw_max) + log(block_sum(sum, sh.d_scratch));

  int32_t token = best_index;
  if (!fast_greedy) {
    if (p.repetition_penalty != 1.0f && p.repetition_penalty > 0.0f) {
      for (int32_t j = threadIdx.x; j < p.repetition_count; j += kThreads) {
        const int32_t id = a.penalty_ids[p.repetition_offset + j];
        if (id < 0 || id >= n)
          continue;
        const float l = work[id];
        work[id] = l > 0.0f ? l / p.repetition_penalty : l * p.repetition_penalty;
      }
      __syncthreads();
    }
    if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
      for (int32_t j = threadIdx.x; j < p.frequency_count; j += kThreads) {
        const int32_t id = a.penalty_ids[p.frequency_offset + j];
        if (id < 0 || id >= n)
          continue;
        work[id] -= p.frequency_penalty * float(a.penalty_counts[p.frequency_offset + j]) + p.presence_penalty;
      }
      __syncthreads();
    }
    if (p.greedy) {
      best = -INFINITY;
      best_index = 0x7fffffff;
      for (int32_t i = threadIdx.x; i < n; i += kThreads) {
        const float v = work[i];
        if (v > best)
          best = v, best_index = i;
      }
      block_argmax(best, best_index, sh);
      token = best_index;
    } else {
      const float inv_t = 1.0f / p.temperature;
      float local_max = -INFINITY;
      for (int32_t i = threadIdx.x; i < n; i += kThreads) {
        const float v = work[i] * inv_t;
        work[i] = v;
        local_max = fmaxf(local_max, v);
      }
      const float max_l = block_max(local_max, sh.f_scratch);
      __syncthreads();

      uint32_t cut_key = 0;
      unsigned long long above = 0;
      if (p.top_k > 0 && p.top_k < n) {
        // k-th largest value; everything below it goes (ties with it stay).
        if (radix_select_top(work, n, false, max_l, (unsigned long long)p.top_k, cut_key, above, sh)) {
          const float threshold =
              __uint_as_float((cut_key & 0x80000000u) ? (cut_key & 0x7fffffffu) : ~cut_key);
          for (int32_t i = threadIdx.x; i < n; i += kThreads)
            if (work[i] < threshold) // float compare, like the CPU (-0 == +0)
              work[i] = -INFINITY;
          __syncthreads();
        }
      }
      if (p.top_p < 1.0f) {
        unsigned long long total = 0;
        for (int32_t i = threadIdx.x; i < n; i += kThreads)
          if (work[i] > -INFINITY)
            total += (unsigned long long)(exp(double(work[i]) - double(max_l)) * kMassScale);
        total = block_sum(total, reinterpret_cast<unsigned long long*>(sh.d_scratch));
        const double wanted = double(p.top_p) * double(total);
        const unsigned long long target = (unsigned long long)ceil(wanted);
        if (target > 0 && radix_select_top(work, n, true, max_l, target, cut_key, above, sh)) {
          // Keys above the cut are in; of the ties at the cut, the lowest ids until the mass
          // reaches the target (the CPU walks ties in id order).
          const float cut_value = __uint_as_float((cut_key & 0x80000000u) ? (cut_key & 0x7fffffffu) : ~cut_key);
          const unsigned long long tie_mass = (unsigned long long)(exp(double(cut_value) - double(max_l)) * kMassScale);
          long long ties_kept = tie_mass > 0 ? (long long)((target - above + tie_mass - 1) / tie_mass) : 1;
          if (ties_kept < 1)
            ties_kept = 1;
          // Rank ties by id: contiguous chunks per thread, exclusive scan of the chunk counts.
          const int32_t chunk = (n + kThreads - 1) / kThreads;
          const int32_t begin = threadIdx.x * chunk, end = min(n, begin + chunk);
          int32_t my_ties = 0;
          for (int32_t i = begin; i < end; ++i)
            my_ties += (work[i] > -INFINITY && ordered_key(work[i]) == cut_key) ? 1 : 0;
          sh.scan[threadIdx.x] = double(my_ties);
          exclusive_scan(sh);
          long long rank = (long long)sh.scan[threadIdx.x];
          for (int32_t i = begin; i < end; ++i) {
            const float v = work[i];
            if (!(v > -INFINITY))
              continue;
            const uint32_t key = ordered_key(v);
            if (key < cut_key || (key == cut_key && rank++ >= ties_kept))
              work[i] = -INFINITY;
          }
          __syncthreads();
        }
      }
      if (p.min_p > 0.0f) {
        for (int32_t i = threadIdx.x; i < n; i += kThreads)
          if (work[i] > -INFINITY && exp(double(work[i]) - double(max_l)) < double(p.min_p))
            work[i] = -INFINITY;
        __syncthreads();
      }

      // Inverse CDF over the survivors in token-id order.
      const int32_t chunk = (n + kThreads - 1) / kThreads;
      const int32_t begin = threadIdx.x * chunk, end = min(n, begin + chunk);
      double mine = 0.0;
      int32_t last_survivor = -1;
      for (int32_t i = begin; i < end; ++i)
        if (work[i] > -INFINITY) {
          mine += exp(double(work[i]) - double(max_l));
          last_survivor = i;
        }
      sh.scan[threadIdx.x] = mine;
      if (threadIdx.x == 0)
        sh.found = 0x7fffffff;
      const double scanned_total = exclusive_scan(sh);
      if (threadIdx.x == 0)
        sh.d_scratch[0] = scanned_total;
      __syncthreads();
      const double total = sh.d_scratch[0];
      const double target = p.uniform * total;
      double cumulative = sh.scan[threadIdx.x];
      // Every chunk ending past the target walks; the lowest id found wins (robust to the
      // rounding difference between chunk sums and the walk).
      if (cumulative + mine > target) {
        for (int32_t i = begin; i < end; ++i) {
          if (!(work[i] > -INFINITY))
            continue;
          cumulative += exp(double(work[i]) - double(max_l));
          if (cumulative > target) {
            atomicMin(&sh.found, i);
            break;
          }
        }
      }
      // Fallback of the CPU when rounding leaves the target unreached: the last survivor.
      float last_f = float(last_survivor);
      int32_t dummy = 0;
      block_argmax(last_f, dummy, sh);
      __syncthreads();
      token = sh.found != 0x7fffffff ? sh.found : int32_t(last_f);
    }
  }
  if (threadIdx.x == 0) {
    a.out_tokens[blockIdx.x] = token;
    a.out_logprobs[blockIdx.x] = float(double(to_float(raw[token])) - lse);
    if (a.out_log_normalizer)
      a.out_log_normalizer[blockIdx.x] = float(lse);
  }
}

} // namespace

void launch_sampler(const sampler_args& args, dtype type, cudaStream_t stream) {
  if (args.num_rows <= 0)
    return;
  ACTORSERVE_DISPATCH_FLOAT(type, "sampler",
                            { sampler_kernel<scalar_t><<<unsigned(args.num_rows), kThreads, 0, stream>>>(args); });
  ACTORSERVE_CUDA_CHECK_LAUNCH("sampler_kernel");
}

} // namespace actorserve::gpu

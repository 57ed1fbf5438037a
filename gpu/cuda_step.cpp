// One step on the device: validate, pack the step's metadata into pinned buffers, copy it up,
// run the forward pass (a CUDA graph for decode-only steps), sample on the GPU, copy back the
// sampled tokens (and logprobs / raw logits when asked).
#include "gpu/cuda_backend_impl.hpp"
#include "gpu/logprobs.hpp"
#include "model/error.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>

namespace actorserve::gpu {
namespace {

float half_bits_to_float(dtype t, const char* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return t == dtype::bf16 ? bf16_to_f32(h) : f16_to_f32(h);
}

} // namespace

step_profiler::~step_profiler() {
  for (cudaEvent_t e : pool_)
    cudaEventDestroy(e);
}

cudaEvent_t step_profiler::next_event() {
  if (used_ == pool_.size()) {
    cudaEvent_t e;
    ACTORSERVE_CUDA_CHECK(cudaEventCreate(&e));
    pool_.push_back(e);
  }
  return pool_[used_++];
}

void step_profiler::start(cudaStream_t stream) {
  used_ = 0;
  marks_.clear();
  ACTORSERVE_CUDA_CHECK(cudaEventRecord(next_event(), stream));
}

void step_profiler::mark(const char* group, cudaStream_t stream) {
  const size_t index = used_;
  ACTORSERVE_CUDA_CHECK(cudaEventRecord(next_event(), stream));
  marks_.emplace_back(group, index);
}

void step_profiler::collect() {
  size_t prev = 0;
  for (const auto& [group, index] : marks_) {
    float ms = 0;
    ACTORSERVE_CUDA_CHECK(cudaEventElapsedTime(&ms, pool_[prev], pool_[index]));
    total_ms[group] += ms;
    prev = index;
  }
  marks_.clear();
  ++steps;
}

int32_t cuda_backend::impl::splits_for(int32_t num_items, int32_t max_context) const {
  if (small_tile_tokens == 0 || num_items <= 0)
    return 1;
  const int64_t ctas = int64_t(num_items) * config.num_key_value_heads;
  if (ctas >= sm_count)
    return 1;
  // About three blocks per multiprocessor (what fits of the tensor-core decode kernel at 162
  // registers), so one wave streams the whole cache; no split shorter than 64 keys (one
  // 16-key group per warp).
  int32_t splits = int32_t((3 * sm_count + ctas - 1) / ctas);
  splits = std::min(splits, std::max(1, (max_context + 63) / 64));
  splits = std::clamp(splits, 1, 64);
  const int32_t group = int32_t(config.num_attention_heads / config.num_key_value_heads);
  while (splits > 1 && attention_split_scratch_floats(attention_tile::small, group, int32_t(config.head_dim), num_items,
                                                      int32_t(config.num_key_value_heads), splits) > split_scratch_floats)
    --splits;
  return splits;
}

void cuda_backend::impl::execute(const step_batch& step, const std::vector<const sequence_sampling_state*>& sampling,
                                 std::vector<sampled_token>& out, std::vector<float>* logits_out) {
  // ---- validation: bad input is a model_error, never a device fault ----
  if (std::string problem = step.validate(block_size, num_blocks); !problem.empty())
    throw model_error("invalid step: " + problem);
  const int32_t num_tokens = step.num_tokens();
  const int32_t num_seqs = int32_t(step.seqs.size());
  if (num_tokens > max_tokens)
    throw model_error("invalid step: " + std::to_string(num_tokens) + " tokens exceed max_num_batched_tokens " +
                      std::to_string(max_tokens));
  if (num_seqs > max_seqs)
    throw model_error("invalid step: " + std::to_string(num_seqs) + " sequences exceed max_num_seqs " +
                      std::to_string(max_seqs));
  for (int32_t id : step.token_ids)
    if (id < 0 || id >= config.vocab_size)
      throw model_error("invalid step: token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                        std::to_string(config.vocab_size) + ")");
  if (int64_t(sampling.size()) != step.num_logits())
    throw model_error("invalid step: " + std::to_string(sampling.size()) + " sampling states for " +
                      std::to_string(step.num_logits()) + " sequences that need logits");
  int32_t max_context = 0;
  size_t table_width = 1;
  bool decode_only = true;
  for (const auto& s : step.seqs) {
    if (s.context_len() > max_model_len)
      throw model_error("invalid step: sequence " + std::to_string(s.seq_id) + " reaches " +
                        std::to_string(s.context_len()) + " tokens, over max_model_len " + std::to_string(max_model_len));
    max_context = std::max(max_context, s.context_len());
    table_width = std::max(table_width, s.block_table.size());
    decode_only = decode_only && s.num_new_tokens == 1;
  }
  table_width = std::min(table_width, size_t(max_blocks_per_seq));
  for (const auto* s : sampling) {
    if (!s)
      throw model_error("invalid step: null sampling state");
    if (!s->params.greedy() && !(s->params.top_p > 0.0f && s->params.top_p <= 1.0f))
      throw model_error("invalid sampling parameters: top_p must be in (0, 1]");
  }

  // ---- graph or eager ----
  int32_t padded = num_tokens;
  cudaGraphExec_t graph = nullptr;
  if (decode_only && graphs_enabled && !profiler.enabled) {
    auto it = graphs.lower_bound(num_seqs);
    if (it != graphs.end()) {
      padded = it->first;
      graph = it->second;
    }
  }

  // ---- pack inputs ----
  int32_t* tok = token_ids.host();
  int32_t* pos = positions.host();
  int32_t* slot = slots.host();
  std::copy(step.token_ids.begin(), step.token_ids.end(), tok);
  std::copy(step.positions.begin(), step.positions.end(), pos);
  std::fill(tok + num_tokens, tok + padded, 0);
  std::fill(pos + num_tokens, pos + padded, 0);
  int32_t* table = block_tables.host();
  std::vector<attention_work_item> small_items, large_items;
  int32_t row = 0, num_logits = 0;
  for (int32_t s = 0; s < num_seqs; ++s) {
    const step_sequence& seq = step.seqs[size_t(s)];
    for (int32_t i = 0; i < seq.num_new_tokens; ++i) {
      const int32_t p = seq.num_computed_tokens + i;
      slot[row + i] = seq.block_table[size_t(p / block_size)] * block_size + p % block_size;
    }
    const size_t width = std::min(seq.block_table.size(), table_width);
    std::copy(seq.block_table.begin(), seq.block_table.begin() + ptrdiff_t(width), table + size_t(s) * table_width);
    if (graph) {
      small_items.push_back({s, row, 1, seq.num_computed_tokens}); // the graph's tile, whichever it is
    } else if (small_tile_tokens > 0 && seq.num_new_tokens <= small_tile_tokens) {
      small_items.push_back({s, row, seq.num_new_tokens, seq.num_computed_tokens});
    } else {
      for (int32_t c = 0; c < seq.num_new_tokens; c += large_tile_tokens)
        large_items.push_back(
            {s, row + c, std::min(large_tile_tokens, seq.num_new_tokens - c), seq.num_computed_tokens + c});
    }
    if (seq.needs_logits)
      logit_rows.host()[num_logits++] = graph ? s : row + seq.num_new_tokens - 1;
    row += seq.num_new_tokens;
  }
  std::fill(slot + num_tokens, slot + padded, -1);
  if (graph)
    for (int32_t s = num_seqs; s < padded; ++s)
      small_items.push_back({s, s, 0, 0}); // padding: the kernels skip it
  if (small_items.size() + large_items.size() > items.capacity())
    throw model_error("invalid step: too many attention work items");
  std::copy(small_items.begin(), small_items.end(), items.host());
  std::copy(large_items.begin(), large_items.end(), items.host() + small_items.size());
  block_table_stride.host()[0] = int32_t(table_width);

  forward_plan plan;
  plan.num_tokens = padded;
  plan.num_small_items = int32_t(small_items.size());
  plan.num_large_items = int32_t(large_items.size());
  plan.num_splits = graph ? 1 : (large_items.empty() ? splits_for(plan.num_small_items, max_context) : 1);
  plan.num_logit_rows = num_logits;
  plan.gather_logit_rows = true;

  // ---- sampling rows and penalty lists ----
  std::vector<int32_t> pen_ids, pen_counts;
  int32_t top_k_max = 0;
  std::vector<int32_t> top_rows;
  for (int32_t i = 0; i < num_logits; ++i) {
    const sequence_sampling_state& st = *sampling[size_t(i)];
    const sampling_params& p = st.params;
    const sampler_row r = make_sampler_row(st, graph ? logit_rows.host()[i] : i, pen_ids, pen_counts);
    sampler_rows.host()[i] = r;
    if (p.logprobs > 0) {
      top_k_max = std::max(top_k_max, std::min<int32_t>(p.logprobs, int32_t(config.vocab_size)));
      top_rows.push_back(i);
    }
  }
  if (top_k_max > 64)
    throw model_error("invalid sampling parameters: at most 64 top logprobs");

  // ---- upload and run ----
  if (profiler.enabled)
    profiler.start(stream);
  token_ids.upload(size_t(padded), stream);
  positions.upload(size_t(padded), stream);
  slots.upload(size_t(padded), stream);
  block_tables.upload(size_t(num_seqs) * table_width, stream);
  block_table_stride.upload(1, stream);
  items.upload(small_items.size() + large_items.size(), stream);
  logit_rows.upload(size_t(num_logits), stream);
  if (graph)
    ACTORSERVE_CUDA_CHECK(cudaGraphLaunch(graph, stream));
  else
    run_forward(plan);

  if (num_logits > 0) {
    if (!pen_ids.empty()) {
      penalty_ids.reserve(pen_ids.size());
      penalty_counts.reserve(pen_counts.size());
      std::copy(pen_ids.begin(), pen_ids.end(), penalty_ids.host());
      std::copy(pen_counts.begin(), pen_counts.end(), penalty_counts.host());
      penalty_ids.upload(pen_ids.size(), stream);
      penalty_counts.upload(pen_counts.size(), stream);
    }
    sampler_rows.upload(size_t(num_logits), stream);
    sampler_args sa;
    sa.logits = logits;
    sa.logits_stride = config.vocab_size;
    sa.vocab_size = int32_t(config.vocab_size);
    sa.rows = sampler_rows.device();
    sa.num_rows = num_logits;
    sa.penalty_ids = penalty_ids.device();
    sa.penalty_counts = penalty_counts.device();
    sa.work = sampler_work;
    sa.out_tokens = out_tokens.device();
    sa.out_logprobs = out_logprobs.device();
    sa.out_log_normalizer = out_lse.device();
    launch_sampler(sa, type, stream);
    if (top_k_max > 0) {
      for (size_t j = 0; j < top_rows.size(); ++j)
        logprob_rows.host()[j] = sampler_rows.host()[top_rows[j]].logits_row;
      logprob_rows.upload(top_rows.size(), stream);
      // The sampler's normalizers are per sampler row; gather them for the logprob rows.
      logprobs_args la;
      la.logits = logits;
      la.logits_stride = config.vocab_size;
      la.vocab_size = int32_t(config.vocab_size);
      la.rows = logprob_rows.device();
      la.num_rows = int32_t(top_rows.size());
      la.k = top_k_max;
      la.out_ids = top_ids.device();
      la.out_logprobs = top_logprobs.device();
      // out_lse is indexed by sampler row; logprob rows are a subset in order, so pass a
      // pointer per row through a compact copy.
      la.log_normalizer = out_lse.device();
      if (top_rows.size() != size_t(num_logits)) {
        // Compact the normalizers on the device side: copy each needed entry.
        for (size_t j = 0; j < top_rows.size(); ++j)
          ACTORSERVE_CUDA_CHECK(cudaMemcpyAsync(out_lse.device() + num_logits + j, out_lse.device() + top_rows[j],
                                                sizeof(float), cudaMemcpyDeviceToDevice, stream));
        la.log_normalizer = out_lse.device() + num_logits;
      }
      launch_logprobs(la, type, stream);
    }
    if (profiler.enabled)
      profiler.mark("sampler", stream);
    out_tokens.download(size_t(num_logits), stream);
    out_logprobs.download(size_t(num_logits), stream);
    if (top_k_max > 0) {
      top_ids.download(top_rows.size() * size_t(top_k_max), stream);
      top_logprobs.download(top_rows.size() * size_t(top_k_max), stream);
    }
  }
  const size_t elem = dtype_size(type);
  if (logits_out && num_logits > 0) {
    logits_host.resize(size_t(num_logits) * size_t(config.vocab_size) * elem);
    for (int32_t i = 0; i < num_logits; ++i)
      ACTORSERVE_CUDA_CHECK(cudaMemcpyAsync(logits_host.data() + size_t(i) * size_t(config.vocab_size) * elem,
                                            static_cast<char*>(logits) + size_t(sampler_rows.host()[i].logits_row) *
                                                                            size_t(config.vocab_size) * elem,
                                            size_t(config.vocab_size) * elem, cudaMemcpyDeviceToHost, stream));
  }
  ACTORSERVE_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (profiler.enabled)
    profiler.collect();

  out.clear();
  out.resize(size_t(num_logits));
  for (int32_t i = 0; i < num_logits; ++i) {
    out[size_t(i)].token = out_tokens.host()[i];
    out[size_t(i)].logprob = out_logprobs.host()[i];
  }
  for (size_t j = 0; j < top_rows.size(); ++j) {
    const int32_t k = std::min<int32_t>(sampling[size_t(top_rows[j])]->params.logprobs, int32_t(config.vocab_size));
    auto& tops = out[size_t(top_rows[j])].top_logprobs;
    for (int32_t e = 0; e < k; ++e)
      tops.emplace_back(top_ids.host()[j * size_t(top_k_max) + size_t(e)],
                        top_logprobs.host()[j * size_t(top_k_max) + size_t(e)]);
  }
  if (logits_out) {
    logits_out->resize(size_t(num_logits) * size_t(config.vocab_size));
    if (type == dtype::f32)
      std::memcpy(logits_out->data(), logits_host.data(), logits_out->size() * sizeof(float));
    else
      for (size_t i = 0; i < logits_out->size(); ++i)
        (*logits_out)[i] = half_bits_to_float(type, logits_host.data() + i * 2);
  }
}

} // namespace actorserve::gpu

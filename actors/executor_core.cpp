#include "actors/executor_core.hpp"

#include <chrono>
#include <stdexcept>
#include <string>

namespace actorserve {

executor_core::executor_core(std::unique_ptr<backend> b) : backend_(std::move(b)) {
  if (!backend_)
    throw std::invalid_argument("executor_core: no backend");
}

executor_info executor_core::info() const {
  executor_info i;
  const model_config& c = backend_->config();
  kv_cache_shape kv = backend_->kv_shape();
  i.name = backend_->name();
  i.vocab_size = int32_t(c.vocab_size);
  i.max_position_embeddings = int32_t(c.max_position_embeddings);
  for (int64_t id : c.eos_token_ids)
    i.eos_token_ids.push_back(int32_t(id));
  i.num_blocks = kv.num_blocks;
  i.num_host_blocks = kv.num_host_blocks;
  i.block_size = kv.block_size;
  if (auto layout = backend_->kv_transfer()) {
    i.kv_transfer = true;
    i.kv_layout = *layout;
  }
  return i;
}

kv_snapshot executor_core::export_kv(uint64_t seq_id) {
  kv_snapshot snap;
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) {
    snap.error = "the executor does not hold sequence " + std::to_string(seq_id);
    return snap;
  }
  auto layout = backend_->kv_transfer();
  if (!layout) {
    snap.error = "the " + backend_->name() + " backend cannot export KV blocks";
    return snap;
  }
  const seq_state& s = it->second;
  try {
    backend_->export_kv(s.block_table, s.num_computed, snap.data);
  } catch (const std::exception& e) {
    snap.data.clear();
    snap.error = e.what();
    return snap;
  }
  snap.layout = *layout;
  snap.block_size = backend_->kv_shape().block_size;
  snap.token_ids.assign(s.tokens.begin(), s.tokens.begin() + s.num_computed);
  return snap;
}

step_result executor_core::run(const step_plan& plan) {
  step_result result;
  result.step_id = plan.step_id;
  auto start = std::chrono::steady_clock::now();
  try {
    run_or_throw(plan, result);
  } catch (const std::exception& e) {
    result.sampled.clear();
    result.error = e.what();
  }
  result.execute_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
  return result;
}

void executor_core::run_or_throw(const step_plan& plan, step_result& result) {
  for (uint64_t id : plan.dropped)
    seqs_.erase(id);
  for (const auto& a : plan.added) {
    seq_state s;
    s.tokens = a.token_ids;
    s.num_computed = a.num_computed;
    s.sampling.params = a.sampling;
    s.sampling.prompt_token_ids.assign(a.token_ids.begin(), a.token_ids.begin() + a.prompt_len);
    s.sampling.output_token_ids.assign(a.token_ids.begin() + a.prompt_len, a.token_ids.end());
    seqs_[a.seq_id] = std::move(s);
  }
  for (const auto& u : plan.tables) {
    auto it = seqs_.find(u.seq_id);
    if (it == seqs_.end())
      throw std::logic_error("executor: block table for unknown sequence " + std::to_string(u.seq_id));
    auto& table = it->second.block_table;
    if (u.start < 0 || u.start > int32_t(table.size()))
      throw std::logic_error("executor: block table update past the end for sequence " + std::to_string(u.seq_id));
    table.resize(u.start);
    table.insert(table.end(), u.blocks.begin(), u.blocks.end());
  }
  if (!plan.swap_out.empty())
    backend_->swap_out(plan.swap_out);
  if (!plan.swap_in.empty())
    backend_->swap_in(plan.swap_in);
  if (!plan.copies.empty())
    backend_->copy_blocks(plan.copies);
  for (const auto& imp : plan.imports) {
    auto it = seqs_.find(imp.seq_id);
    if (it == seqs_.end() || !imp.data)
      throw std::logic_error("executor: KV import for unknown sequence " + std::to_string(imp.seq_id));
    if (it->second.num_computed != imp.num_tokens)
      throw std::logic_error("executor: KV import of " + std::to_string(imp.num_tokens) + " tokens for sequence " +
                             std::to_string(imp.seq_id) + " admitted at " + std::to_string(it->second.num_computed));
    backend_->import_kv(it->second.block_table, imp.num_tokens, imp.data_tokens, *imp.data);
  }
  if (plan.seqs.empty())
    return;

  batch_.token_ids.clear();
  batch_.positions.clear();
  batch_.seqs.clear();
  sampling_.clear();
  std::vector<seq_state*> states;
  states.reserve(plan.seqs.size());
  for (const auto& sc : plan.seqs) {
    auto it = seqs_.find(sc.seq_id);
    if (it == seqs_.end())
      throw std::logic_error("executor: step names unknown sequence " + std::to_string(sc.seq_id));
    seq_state& s = it->second;
    if (sc.num_computed != s.num_computed || sc.num_computed + sc.num_new > int32_t(s.tokens.size()))
      throw std::logic_error("executor: sequence " + std::to_string(sc.seq_id) + " is at " +
                             std::to_string(s.num_computed) + " of " + std::to_string(s.tokens.size()) +
                             " tokens, the step expects " + std::to_string(sc.num_computed) + " + " +
                             std::to_string(sc.num_new));
    step_sequence q;
    q.seq_id = sc.seq_id;
    q.num_computed_tokens = sc.num_computed;
    q.num_new_tokens = sc.num_new;
    q.needs_logits = sc.needs_logits;
    q.block_table = s.block_table;
    batch_.add(q, s.tokens.data() + sc.num_computed);
    if (sc.needs_logits)
      sampling_.push_back(&s.sampling);
    states.push_back(&s);
  }
  sampled_.clear();
  backend_->execute(batch_, sampling_, sampled_);
  if (sampled_.size() != sampling_.size())
    throw std::logic_error("executor: backend returned " + std::to_string(sampled_.size()) + " tokens for " +
                           std::to_string(sampling_.size()) + " sequences");
  size_t k = 0;
  result.sampled.reserve(sampled_.size());
  for (size_t i = 0; i < plan.seqs.size(); ++i) {
    seq_state& s = *states[i];
    s.num_computed += plan.seqs[i].num_new;
    if (!plan.seqs[i].needs_logits)
      continue;
    const sampled_token& t = sampled_[k++];
    s.tokens.push_back(t.token);
    s.sampling.output_token_ids.push_back(t.token);
    sampled_wire w;
    w.seq_id = plan.seqs[i].seq_id;
    w.token = t.token;
    w.logprob_bits = float_bits(t.logprob);
    for (const auto& [id, lp] : t.top_logprobs) {
      w.top_tokens.push_back(id);
      w.top_logprob_bits.push_back(float_bits(lp));
    }
    result.sampled.push_back(std::move(w));
  }
}

} // namespace actorserve

#include "actors/scheduler_policy.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace actorserve {

namespace {
int64_t now_us() { return to_us(engine_clock::now()); }

bool contains(const std::vector<int32_t>& v, int32_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }
} // namespace

scheduler_policy::scheduler_policy(scheduler_config config) : config_(std::move(config)) {
  if (config_.max_num_seqs < 1 || config_.max_num_batched_tokens < 1 || config_.block_size < 1 ||
      config_.max_num_partial_prefills < 1)
    throw std::invalid_argument("scheduler_policy: max_num_seqs, max_num_batched_tokens, block_size and "
                                "max_num_partial_prefills must be positive");
}

const sequence* scheduler_policy::find_sequence(uint64_t seq_id) const {
  auto it = seqs_.find(seq_id);
  return it == seqs_.end() ? nullptr : it->second.get();
}

uint64_t scheduler_policy::exportable_sequence(uint64_t request_id, std::string& why) const {
  auto it = requests_.find(request_id);
  if (it == requests_.end()) {
    why = "request " + std::to_string(request_id) + " is not running here";
    return 0;
  }
  const request_entry& r = it->second;
  if (r.n != 1 || r.seq_ids.size() != 1) {
    why = "requests with n > 1 cannot export their KV blocks";
    return 0;
  }
  const sequence* s = find_sequence(r.seq_ids[0]);
  if (!s || s->released || s->status != seq_status::running || !s->known_to_executor || s->num_computed == 0) {
    why = "request " + std::to_string(request_id) + " has no KV blocks on the device (waiting, swapped or finished)";
    return 0;
  }
  return s->seq_id;
}

int32_t scheduler_policy::seats_of(const sequence& s) const {
  if (!s.fork_pending)
    return 1;
  return requests_.at(s.request_id).n;
}

void scheduler_policy::add_request(const generate_request& req) {
  if (requests_.count(req.id))
    throw std::invalid_argument("scheduler_policy: duplicate request id " + std::to_string(req.id));
  if (req.prompt_token_ids.empty() || req.n < 1)
    throw std::invalid_argument("scheduler_policy: empty prompt or n < 1");
  request_entry r;
  r.id = req.id;
  r.n = req.n;
  r.num_live = req.n;
  r.max_tokens = req.max_tokens;
  r.min_tokens = req.min_tokens;
  r.ignore_eos = req.ignore_eos;
  r.stop_token_ids = req.stop_token_ids;

  auto s = std::make_unique<sequence>();
  s->seq_id = next_seq_id_++;
  s->request_id = req.id;
  s->tokens = req.prompt_token_ids;
  // A resumed request: its delivered outputs are recomputed like a preempted sequence's.
  s->tokens.insert(s->tokens.end(), req.resume_output_token_ids.begin(), req.resume_output_token_ids.end());
  s->prompt_len = int32_t(req.prompt_token_ids.size());
  s->fork_pending = req.n > 1;
  s->priority_key = config_.policy == scheduling_policy::priority ? req.priority : 0;
  s->arrival_order = next_arrival_++;
  s->sampling = req.sampling;
  if (req.kv_import && req.n == 1 && req.kv_import->error.empty()) {
    // Import the longest prefix whose tokens match (prompt, then resumed outputs), leaving the
    // last token to compute (its logits).
    const auto& kv = *req.kv_import;
    const size_t limit = std::min(kv.token_ids.size(), s->tokens.size() - 1);
    size_t match = 0;
    while (match < limit && kv.token_ids[match] == s->tokens[size_t(match)])
      ++match;
    if (match > 0) {
      s->imported_tokens = int32_t(match);
      s->imported_data_tokens = int32_t(kv.token_ids.size());
      s->imported_kv = std::shared_ptr<const std::string>(req.kv_import, &req.kv_import->data);
    }
  }
  r.seq_ids.push_back(s->seq_id);
  num_prompt_tokens_ += s->prompt_len;
  ++num_unadmitted_;
  s->request = &requests_.emplace(req.id, std::move(r)).first->second;
  enqueue(*s);
  seqs_.emplace(s->seq_id, std::move(s));
}

bool scheduler_policy::has_work() const {
  return !running_.empty() || !waiting_.empty() || !swapped_.empty() || has_housekeeping();
}

bool scheduler_policy::has_housekeeping() const {
  return !pending_free_.empty() || !pending_drop_.empty() || !pending_commits_.empty();
}

token_event& scheduler_policy::event_for(request_entry& r) {
  if (r.event_epoch != event_epoch_) {
    r.event_epoch = event_epoch_;
    r.event_slot = events_.size();
    events_.emplace_back();
  }
  token_event& e = events_[r.event_slot];
  e.request_id = r.id;
  e.first_scheduled_us = r.first_scheduled_us;
  e.num_cached_prompt_tokens = r.num_cached_prompt_tokens;
  e.num_preemptions = r.num_preemptions;
  return e;
}

std::vector<token_event> scheduler_policy::take_events() {
  std::vector<token_event> out = std::move(events_);
  events_.clear();
  ++event_epoch_; // every request's slot is stale now
  return out;
}

void scheduler_policy::enqueue(sequence& s) {
  if (s.status == seq_status::swapped)
    swapped_.insert({key_of(s), &s});
  else
    waiting_.insert({key_of(s), &s});
}

void scheduler_policy::dequeue(sequence& s) {
  waiting_.erase({key_of(s), &s});
  swapped_.erase({key_of(s), &s});
}

void scheduler_policy::insert_running(sequence& s) {
  auto pos = std::upper_bound(running_.begin(), running_.end(), &s, [](const sequence* a, const sequence* b) {
    return std::tie(a->priority_key, a->admitted_order) < std::tie(b->priority_key, b->admitted_order);
  });
  running_.insert(pos, &s);
  s.status = seq_status::running;
}

void scheduler_policy::remove_running(sequence& s) {
  auto it = std::find(running_.begin(), running_.end(), &s);
  if (it != running_.end())
    running_.erase(it);
}

void scheduler_policy::release(sequence& s) {
  if (s.status == seq_status::running)
    remove_running(s);
  else
    dequeue(s);
  s.released = true;
  pending_free_.push_back(s.seq_id);
  if (s.known_to_executor)
    pending_drop_.push_back(s.seq_id);
  auto it = seqs_.find(s.seq_id);
  graveyard_.push_back(std::move(it->second));
  seqs_.erase(it);
}

void scheduler_policy::finish_seq(sequence& s, request_entry& r) {
  release(s);
  if (--r.num_live == 0) {
    if (!r.counted_admitted)
      --num_unadmitted_;
    ++num_finished_requests_;
    requests_.erase(r.id);
  }
}

void scheduler_policy::abort_request(uint64_t request_id, engine_errc error, const std::string& message, bool notify) {
  auto it = requests_.find(request_id);
  if (it == requests_.end())
    return;
  if (notify) {
    token_event& e = event_for(it->second);
    e.error = error;
    e.error_message = message;
    for (uint64_t id : it->second.seq_ids) {
      auto s = seqs_.find(id);
      if (s == seqs_.end())
        continue; // that choice already finished
      auto c = std::find_if(e.choices.begin(), e.choices.end(),
                            [&](const choice_tokens& ct) { return ct.index == s->second->choice; });
      if (c == e.choices.end()) {
        e.choices.push_back({});
        c = e.choices.end() - 1;
        c->index = s->second->choice;
      }
      c->finish = finish_reason::abort;
    }
    // Choices not forked yet (n > 1 before the prompt is in) finish as well.
    for (int32_t i = int32_t(it->second.seq_ids.size()); i < it->second.n; ++i) {
      choice_tokens ct;
      ct.index = i;
      ct.finish = finish_reason::abort;
      e.choices.push_back(ct);
    }
  }
  for (uint64_t id : it->second.seq_ids)
    if (auto s = seqs_.find(id); s != seqs_.end())
      release(*s->second);
  if (!it->second.counted_admitted)
    --num_unadmitted_;
  ++num_finished_requests_;
  requests_.erase(it);
}

void scheduler_policy::finish_choice(uint64_t request_id, int32_t choice) {
  auto it = requests_.find(request_id);
  if (it == requests_.end())
    return;
  for (uint64_t id : it->second.seq_ids) {
    auto s = seqs_.find(id);
    if (s != seqs_.end() && s->second->choice == choice) {
      finish_seq(*s->second, it->second);
      return;
    }
  }
}

void scheduler_policy::preempt(sequence& s, bool swapped) {
  remove_running(s);
  ++num_preemptions_;
  ++requests_.at(s.request_id).num_preemptions;
  if (swapped) {
    s.status = seq_status::swapped;
  } else {
    s.status = seq_status::waiting;
    s.num_computed = 0;
    s.num_committed = 0;
    if (s.known_to_executor)
      pending_drop_.push_back(s.seq_id);
    s.known_to_executor = false;
  }
  enqueue(s);
}

void scheduler_policy::fork(sequence& parent, capacity_request& cap) {
  request_entry& r = requests_.at(parent.request_id);
  parent.fork_pending = false;
  for (int32_t choice = 1; choice < r.n; ++choice) {
    auto child = std::make_unique<sequence>();
    child->seq_id = next_seq_id_++;
    child->request_id = parent.request_id;
    child->request = parent.request;
    child->choice = choice;
    child->tokens = parent.tokens;
    child->prompt_len = parent.prompt_len;
    child->num_computed = parent.num_computed;
    child->num_committed = parent.num_committed;
    child->priority_key = parent.priority_key;
    child->arrival_order = parent.arrival_order;
    child->admitted_order = next_admission_++;
    child->sampling = parent.sampling;
    child->sampling.seed = parent.sampling.seed + uint64_t(choice);
    child->known_to_executor = true;
    pending_added_.push_back({child->seq_id, child->sampling, child->tokens, child->prompt_len, child->num_computed});
    cap.forks.push_back({parent.seq_id, child->seq_id});
    r.seq_ids.push_back(child->seq_id);
    insert_running(*child);
    seqs_.emplace(child->seq_id, std::move(child));
  }
}

capacity_request scheduler_policy::propose() {
  plan_running_.clear();
  plan_admit_.clear();
  graveyard_.clear();
  capacity_request cap;
  cap.free_seqs = std::move(pending_free_);
  pending_free_.clear();
  cap.commits = std::move(pending_commits_);
  pending_commits_.clear();
  cap.preempt_by_swap = config_.preemption == preemption_mode::swap;
  cap.watermark_blocks = config_.watermark_blocks;

  std::vector<sequence*> to_fork;
  for (sequence* s : running_)
    if (s->fork_pending && s->num_computed == s->target())
      to_fork.push_back(s);
  for (sequence* s : to_fork)
    fork(*s, cap);

  int32_t budget = config_.max_num_batched_tokens;
  for (sequence* s : running_)
    s->planned_new = 0;
  auto suspect = std::find_if(running_.begin(), running_.end(), [](const sequence* s) { return s->suspect; });
  if (suspect != running_.end()) {
    // Retrying after a failed step: this sequence runs alone so a failure is attributable.
    sequence* s = *suspect;
    s->planned_new = std::min(budget, s->target() - s->num_computed);
    plan_running_.push_back({s, s->planned_new});
  } else {
    for (sequence* s : running_) { // decodes first: one token each
      if (budget > 0 && s->target() - s->num_computed == 1) {
        s->planned_new = 1;
        --budget;
        plan_running_.push_back({s, 1});
      }
    }
    for (sequence* s : running_) { // then prefill chunks, oldest admission first
      int32_t remaining = s->target() - s->num_computed;
      if (budget > 0 && remaining > 1) {
        s->planned_new = std::min(remaining, budget);
        budget -= s->planned_new;
        plan_running_.push_back({s, s->planned_new});
      }
    }
  }
  int32_t seats_used = 0;
  int32_t partial_prefills = 0;
  for (sequence* s : running_) {
    seats_used += seats_of(*s);
    if (s->target() - s->num_computed > 1 && s->num_computed + s->planned_new < s->target())
      ++partial_prefills;
  }

  if (suspect == running_.end()) {
    // Returns false to stop admitting (FCFS: nobody overtakes a candidate that does not fit).
    auto consider = [&](sequence* s) {
      if (s->suspect) {
        // Retried after a failed step: its first chunk runs alone, running sequences pause.
        if (!plan_admit_.empty() || seats_used + seats_of(*s) > config_.max_num_seqs)
          return false;
        for (sequence* r : running_)
          r->planned_new = 0;
        plan_running_.clear();
        budget = config_.max_num_batched_tokens;
      }
      if (budget <= 0 || seats_used + seats_of(*s) > config_.max_num_seqs)
        return false;
      // An imported sequence starts computing after its imported tokens.
      const bool imported = s->imported_tokens > 0 && s->status == seq_status::waiting;
      int32_t remaining = s->target() - (imported ? s->imported_tokens : s->num_computed);
      int32_t chunk = std::min(remaining, budget);
      if (chunk < remaining && !s->suspect) {
        if (partial_prefills >= config_.max_num_partial_prefills)
          return false;
        ++partial_prefills;
      }
      kv_admit a;
      a.seq_id = s->seq_id;
      a.swapped = s->status == seq_status::swapped;
      if (imported)
        a.imported_tokens = s->imported_tokens;
      else if (!a.swapped && config_.enable_prefix_caching)
        a.token_ids.assign(s->tokens.begin(), s->tokens.begin() + s->target());
      a.num_tokens = s->target();
      a.num_computed = s->num_computed;
      a.max_new_tokens = chunk;
      cap.admit.push_back(std::move(a));
      plan_admit_.push_back({s, chunk});
      budget -= chunk;
      seats_used += seats_of(*s);
      return !s->suspect;
    };
    bool go = true;
    for (auto it = swapped_.begin(); go && it != swapped_.end(); ++it)
      go = consider(it->second);
    for (auto it = waiting_.begin(); go && it != waiting_.end(); ++it)
      go = consider(it->second);
  }
  for (sequence* s : running_)
    cap.running.push_back({s->seq_id, s->num_computed, s->num_computed + s->planned_new});
  return cap;
}

step_plan scheduler_policy::build(const capacity_reply& reply) {
  for (const auto& p : reply.preempted) {
    auto it = seqs_.find(p.seq_id);
    if (it == seqs_.end())
      continue; // aborted while the kv manager was deciding
    sequence& s = *it->second;
    if (p.never_fits) {
      if (s.known_to_executor)
        pending_drop_.push_back(s.seq_id);
      s.known_to_executor = false;
      abort_request(s.request_id, engine_errc::invalid_request,
                    "the sequence needs more KV cache blocks than the whole pool holds "
                    "(raise the KV cache size or lower max_tokens)");
      continue;
    }
    preempt(s, p.swapped);
  }
  int64_t now = now_us();
  std::vector<sequence*> admitted;
  std::vector<kv_import> imports;
  for (const auto& a : reply.admitted) {
    auto it = seqs_.find(a.seq_id);
    if (it == seqs_.end())
      continue; // aborted meanwhile; the kv manager frees it next iteration
    sequence& s = *it->second;
    bool from_swap = s.status == seq_status::swapped;
    dequeue(s);
    if (!from_swap) {
      s.num_computed = a.num_cached_tokens;
      s.num_committed = a.num_cached_tokens;
      if (s.imported_tokens > 0) {
        if (a.num_cached_tokens != s.imported_tokens)
          throw std::logic_error("scheduler_policy: imported sequence admitted at " +
                                 std::to_string(a.num_cached_tokens) + " of " + std::to_string(s.imported_tokens));
        imports.push_back({s.seq_id, s.imported_tokens, s.imported_data_tokens, std::move(s.imported_kv)});
        s.num_committed = 0; // fresh blocks: they go to the prefix cache as they fill, like computed ones
        s.imported_tokens = 0;
        s.imported_kv.reset();
      }
    }
    s.admitted_order = next_admission_++;
    insert_running(s);
    request_entry& r = requests_.at(s.request_id);
    if (!r.counted_admitted) {
      r.counted_admitted = true;
      --num_unadmitted_;
      r.first_scheduled_us = now;
      r.num_cached_prompt_tokens = a.num_cached_tokens;
    }
    s.planned_new = a.num_tokens_after - s.num_computed;
    if (!s.known_to_executor) {
      pending_added_.push_back({s.seq_id, s.sampling, s.tokens, s.prompt_len, s.num_computed});
      s.known_to_executor = true;
    }
    admitted.push_back(&s);
  }

  step_plan plan;
  plan.step_id = next_step_id_++;
  plan.dropped = std::move(pending_drop_);
  pending_drop_.clear();
  for (auto& a : pending_added_)
    if (seqs_.count(a.seq_id))
      plan.added.push_back(std::move(a));
  pending_added_.clear();
  for (const auto& u : reply.updates)
    if (seqs_.count(u.seq_id))
      plan.tables.push_back(u);
  plan.swap_out = reply.swap_out;
  plan.swap_in = reply.swap_in;
  plan.copies = reply.copies;
  plan.imports = std::move(imports);

  int32_t num_tokens = 0;
  auto schedule = [&](sequence* s) {
    if (s->released || s->status != seq_status::running || s->planned_new <= 0)
      return;
    scheduled_sequence sc;
    sc.seq_id = s->seq_id;
    sc.num_computed = s->num_computed;
    sc.num_new = s->planned_new;
    sc.needs_logits = !s->fork_pending && s->num_computed + s->planned_new == s->num_tokens();
    num_tokens += sc.num_new;
    plan.seqs.push_back(sc);
  };
  for (const auto& p : plan_running_)
    schedule(p.seq);
  for (sequence* s : admitted)
    schedule(s);

  int32_t seats = 0;
  for (const sequence* s : running_)
    seats += seats_of(*s);
  if (num_tokens > config_.max_num_batched_tokens || seats > config_.max_num_seqs)
    throw std::logic_error("scheduler_policy: step of " + std::to_string(num_tokens) + " tokens and " +
                           std::to_string(seats) + " sequences breaks the budget");
  if (!plan.seqs.empty())
    ++num_steps_;
  last_step_ = plan.seqs;
  last_step_seqs_.clear();
  for (const auto& sc : plan.seqs)
    last_step_seqs_.push_back(seqs_.at(sc.seq_id).get());
  plan_running_.clear();
  plan_admit_.clear();
  return plan;
}

void scheduler_policy::apply(const step_result& result) {
  if (!result.error.empty()) {
    fail_step(result.error);
    return;
  }
  size_t next_sample = 0;
  const int32_t bs = config_.block_size;
  for (size_t i = 0; i < last_step_.size(); ++i) {
    const scheduled_sequence& sc = last_step_[i];
    const sampled_wire* sample = nullptr;
    if (sc.needs_logits) {
      if (next_sample >= result.sampled.size() || result.sampled[next_sample].seq_id != sc.seq_id)
        throw std::logic_error("scheduler_policy: step result does not match the step's sequences");
      sample = &result.sampled[next_sample++];
    }
    sequence& s = *last_step_seqs_[i]; // alive until the next propose(), even if released
    if (s.released)
      continue; // finished or aborted while the step ran
    s.num_computed += sc.num_new;
    s.suspect = false;
    if (config_.enable_prefix_caching) {
      int32_t full = (s.num_computed / bs) * bs;
      if (full > s.num_committed) {
        pending_commits_.push_back({s.seq_id, {s.tokens.begin() + s.num_committed, s.tokens.begin() + full}});
        s.num_committed = full;
      }
    }
    if (!sample)
      continue;
    request_entry& r = *s.request;
    s.tokens.push_back(sample->token);
    ++num_generation_tokens_;
    token_event& e = event_for(r);
    auto c = std::find_if(e.choices.begin(), e.choices.end(), [&](const choice_tokens& ct) { return ct.index == s.choice; });
    if (c == e.choices.end()) {
      e.choices.push_back({});
      c = e.choices.end() - 1;
      c->index = s.choice;
    }
    c->tokens.push_back(*sample);
    int32_t t = sample->token;
    if (s.num_outputs() >= r.min_tokens) {
      if ((!r.ignore_eos && contains(config_.eos_token_ids, t)) || contains(r.stop_token_ids, t)) {
        c->finish = finish_reason::stop;
        c->stop_token = t;
      }
    }
    if (c->finish == finish_reason::none &&
        (s.num_outputs() >= r.max_tokens || s.num_tokens() >= config_.max_model_len))
      c->finish = finish_reason::length;
    if (c->finish != finish_reason::none)
      finish_seq(s, r);
  }
}

void scheduler_policy::fail_step(const std::string& error) {
  ++num_step_failures_;
  bool alone = last_step_.size() == 1;
  for (const auto& sc : last_step_) {
    auto it = seqs_.find(sc.seq_id);
    if (it == seqs_.end())
      continue;
    sequence& s = *it->second;
    if (alone || s.suspect || ++s.num_failures >= 3) {
      abort_request(s.request_id, engine_errc::executor_failed, "the executor failed on this request: " + error);
      continue;
    }
    // Retry by recompute, alone, so a request that breaks the backend cannot take others down.
    s.suspect = true;
    remove_running(s);
    s.status = seq_status::waiting;
    s.num_computed = 0;
    s.num_committed = 0;
    pending_free_.push_back(s.seq_id);
    pending_drop_.push_back(s.seq_id);
    s.known_to_executor = false;
    enqueue(s);
  }
}

} // namespace actorserve

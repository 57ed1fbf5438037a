// Routing: placing a request on a node (router_policy over this node and its peers), forwarding
// it to a peer, relaying the peer's output events back in order, and cancelling remote attempts.

#include "actors/cluster/node_impl.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace actorserve::cluster {

// Helpers with `mu` held.

void cluster_node::impl::note_prefixes(const std::vector<uint64_t>& hashes) {
  for (uint64_t h : hashes)
    if (own_prefixes.insert(h).second)
      new_prefixes.push_back(h);
  if (own_prefixes.size() > max_prefixes_per_node)
    own_prefixes.clear();
}

void cluster_node::impl::cancel_part(uint64_t id, const origin_part& part) {
  if (part.executor == cfg.name) {
    eng.cancel(part.local_id);
    return;
  }
  auto p = peers.find(part.executor);
  if (p != peers.end() && p->second.handle) // through the node actor: peers accept cancels from it only
    caf::anon_send(node, cancel_to_atom_v, p->second.handle, encode(cancel_msg{id, part.attempt}));
}

void cluster_node::impl::fail(uint64_t id, origin_req& o, engine_errc err, const std::string& why) {
  for (const origin_part& part : o.parts) {
    release_outstanding(part);
    cancel_part(id, part);
  }
  request_output out;
  out.request_id = id;
  out.finished = true;
  out.error = err;
  out.error_message = why;
  out.usage = {int32_t(o.original.prompt_token_ids.size()), o.completion_tokens()};
  o.abort_unfinished(out.choices);
  auto sink = std::move(o.sink);
  origins.erase(id);
  if (sink)
    sink(std::move(out));
}

generate_request cluster_node::impl::part_request(const origin_req& o, const origin_part& part) const {
  generate_request req = o.original;
  req.id = 0;
  if (part.choices.size() == size_t(o.original.n) && o.completion_tokens() == 0)
    return req; // the whole request, nothing delivered yet
  // One choice, continuing from what its client has received (engine: resume_output_token_ids).
  const int32_t c = part.choices.at(0);
  req.n = 1;
  req.sampling.seed = o.original.sampling.seed + uint64_t(c); // the engine's seed for choice c
  req.resume_output_token_ids = o.received.at(size_t(c));
  return req;
}

bool cluster_node::impl::live_target(const std::string& name) const {
  if (name == cfg.name)
    return !draining.load();
  auto p = peers.find(name);
  return p != peers.end() && p->second.alive && !p->second.load.draining;
}

bool cluster_node::impl::place(uint64_t id, origin_part part, const std::vector<std::string>& exclude,
                               const std::string& to, submit_result* result) {
  origin_req& o = origins.at(id);
  generate_request req = part_request(o, part);
  if (!req.resume_output_token_ids.empty())
    o.resumed_tokens += req.prompt_token_ids.size() + req.resume_output_token_ids.size();
  if (int32_t(req.resume_output_token_ids.size()) >= req.max_tokens) {
    // Everything of this choice was delivered but its final event: finish it here.
    const int32_t c = part.choices.at(0);
    o.choice_done[size_t(c)] = true;
    request_output out;
    out.request_id = id;
    choice_delta d;
    d.index = c;
    d.finish = finish_reason::length;
    out.choices.push_back(d);
    out.usage = {int32_t(o.original.prompt_token_ids.size()), o.completion_tokens()};
    out.finished = o.parts.empty() && std::all_of(o.choice_done.begin(), o.choice_done.end(), [](bool b) { return b; });
    const bool finished = out.finished;
    o.sink(std::move(out));
    if (finished)
      origins.erase(id);
    return true;
  }
  const auto hashes = prefix_block_hashes(req.prompt_token_ids, cfg.block_size, cfg.affinity_blocks);
  // Views: this node first, then the peers.
  std::vector<node_view> views;
  const engine_stats s = eng.stats();
  int32_t local_outstanding = 0;
  for (const auto& [oid, other] : origins)
    for (const auto& p : other.parts)
      if (p.executor == cfg.name)
        ++local_outstanding;
  views.push_back({cfg.name, true, draining.load() || s.draining, s.num_running, s.num_waiting, s.kv_usage,
                   cfg.capacity, local_outstanding, &own_prefixes});
  std::vector<peer_state*> order{nullptr};
  for (auto& [name, p] : peers) {
    views.push_back({name, p.alive, p.load.draining, p.load.running, p.load.waiting, p.load.kv_usage,
                     p.load.capacity, p.outstanding, &p.prefixes});
    order.push_back(&p);
  }
  std::optional<route_decision> decision;
  if (!to.empty()) { // an admin migration names the node (checked by the caller)
    for (size_t i = 0; i < views.size(); ++i)
      if (views[i].name == to && live_target(to))
        decision = route_decision{i, 0, false};
  } else {
    decision = router.pick(views, hashes, exclude);
  }
  if (!decision) {
    if (result)
      *result = {0, engine_errc::overloaded, "no cluster node can take the request (all draining or lost)"};
    else
      fail(id, o, engine_errc::executor_failed, "no cluster node could resume the request");
    return false;
  }
  if (decision->affinity)
    ++counters.affinity_hits;
  const uint32_t attempt = ++o.attempts;
  part.attempt = attempt;
  peer_state* target = order[decision->node];
  kv_source kv = take_kv_source(o, part); // a migration shipping its KV blocks
  if (!target) {
    part.executor = cfg.name;
    ++counters.routed_local;
    if (kv) {
      note_prefixes(hashes);
      return place_local_with_kv(id, std::move(part), std::move(req), std::move(kv));
    }
    submit_result r = eng.submit(std::move(req), [this, id, attempt](request_output&& out) {
      on_output(id, attempt, std::move(out), nullptr);
    });
    if (!r) {
      if (result) {
        *result = r;
        return false;
      }
      fail(id, o, r.error, r.message);
      return false;
    }
    part.local_id = r.request_id;
    o.parts.push_back(std::move(part));
    note_prefixes(hashes);
    return true;
  }
  part.executor = target->name;
  part.kv = bool(kv);
  o.parts.push_back(std::move(part));
  ++target->outstanding;
  ++counters.routed_remote;
  forward_msg f{id, attempt, std::move(req)};
  f.kv_node = kv.node;
  f.kv_transfer_id = kv.transfer_id;
  caf::anon_send(node, place_atom_v, target->name, encode(f), id, attempt);
  return true;
}

// An event of request `id`'s placement `attempt` (from the local engine or a peer).
void cluster_node::impl::on_output(uint64_t id, uint32_t attempt, request_output&& out, bool* stale) {
  std::lock_guard lock(mu);
  auto it = origins.find(id);
  origin_part* part = it == origins.end() ? nullptr : it->second.part(attempt);
  if (!part) {
    if (stale)
      *stale = !out.finished;
    return;
  }
  origin_req& o = it->second;
  // An engine going away mid-request (its node draining or failing): resume elsewhere. The
  // tokens of this last event are not delivered: resume from what the client has.
  if (out.finished && (out.error == engine_errc::shutting_down || out.error == engine_errc::executor_failed)) {
    spdlog::warn("cluster: request {} ended on {} with '{}': resuming elsewhere", id, part->executor,
                 out.error_message);
    resume(id, attempt, part->executor, false);
    return;
  }
  const auto now = clock_type::now();
  std::vector<choice_delta> deltas;
  for (choice_delta& d : out.choices) {
    if (d.index < 0 || size_t(d.index) >= part->choices.size())
      continue; // not a choice of this placement
    d.index = part->choices[size_t(d.index)];
    auto& got = o.received[size_t(d.index)];
    got.insert(got.end(), d.token_ids.begin(), d.token_ids.end());
    if (d.finish != finish_reason::none)
      o.choice_done[size_t(d.index)] = true;
    deltas.push_back(std::move(d));
  }
  out.choices = std::move(deltas);
  if (o.pause_pending && !out.choices.empty()) {
    const double pause_s = std::chrono::duration<double>(now - o.loss_at).count();
    o.pause_pending = false;
    if (o.migration)
      counters.migrate_seconds_total += pause_s;
    else
      counters.last_failover_pause_s = pause_s;
    counters.migrated_tokens_total += int64_t(o.resumed_tokens);
    o.resumed_tokens = 0;
  }
  o.last_event = now;
  out.request_id = id;
  if (out.finished) {
    release_outstanding(*part);
    o.parts.erase(o.parts.begin() + (part - o.parts.data()));
    if (out.error != engine_errc::none) { // cancelled, deadline, invalid: the whole request ends
      for (const origin_part& other : o.parts) {
        release_outstanding(other);
        cancel_part(id, other);
      }
      o.parts.clear();
      o.abort_unfinished(out.choices);
    }
    out.finished = o.parts.empty(); // the other choices' placements go on
  }
  out.usage = {int32_t(o.original.prompt_token_ids.size()), o.completion_tokens()};
  const bool finished = out.finished;
  // With `mu` held: events of different placements (local engine, peers) reach the client one at
  // a time and in the order they were counted.
  o.sink(std::move(out));
  if (finished)
    origins.erase(it);
}

// ---- node actor handlers ------------------------------------------------------------------

caf::result<std::string> cluster_node::impl::on_forward(caf::event_based_actor* self, const std::string& blob) {
  auto origin = caf::actor_cast<caf::actor>(self->current_sender());
  forward_msg m;
  {
    std::lock_guard lock(mu);
    if (!peer_by_addr(origin.address()))
      return encode(forward_reply_msg{engine_errc::invalid_request, "not a cluster peer (no handshake)"});
    if (auto error = decode_or_count(blob, m)) {
      spdlog::warn("cluster: refused a malformed forwarded request: {}", *error);
      return encode(forward_reply_msg{engine_errc::invalid_request, "malformed: " + *error});
    }
    if (draining.load())
      return encode(forward_reply_msg{engine_errc::shutting_down, "node is draining"});
  }
  if (m.kv_transfer_id != 0) // a migration by KV shipping: fetch the blocks, then submit
    return on_forward_kv(self, origin, std::move(m));
  return submit_forwarded(self, origin, std::move(m));
}

std::string cluster_node::impl::submit_forwarded(caf::event_based_actor* self, const caf::actor& origin,
                                                 forward_msg m) {
  const auto hashes = prefix_block_hashes(m.request.prompt_token_ids, cfg.block_size, cfg.affinity_blocks);
  auto relay = [node = caf::actor(self), origin, id = m.origin_id, attempt = m.attempt,
                this](request_output&& out) {
    const bool finished = out.finished;
    const uint64_t engine_id = out.request_id;
    caf::anon_send(node, relay_atom_v, origin, encode(output_msg{id, attempt, std::move(out)}));
    if (finished) {
      std::lock_guard lock(mu);
      execs.erase(engine_id);
    }
  };
  // Holding the lock across submit: the first event cannot erase the entry before it exists.
  std::lock_guard lock(mu);
  submit_result r = eng.submit(std::move(m.request), std::move(relay));
  if (!r)
    return encode(forward_reply_msg{r.error, r.message});
  execs[r.request_id] = {origin, m.origin_id, m.attempt};
  ++counters.executed_for_peers;
  note_prefixes(hashes);
  return encode(forward_reply_msg{});
}

void cluster_node::impl::on_output_msg(caf::event_based_actor* self, const std::string& blob) {
  output_msg m;
  if (auto error = decode_or_count(blob, m)) {
    spdlog::warn("cluster: malformed output event: {}", *error);
    return;
  }
  bool stale = false;
  on_output(m.origin_id, m.attempt, std::move(m.output), &stale);
  if (stale) // a frozen node woke up and still runs a request that moved on: stop it
    self->send(caf::actor_cast<caf::actor>(self->current_sender()), cancel_atom_v,
               encode(cancel_msg{m.origin_id, m.attempt}));
}

void cluster_node::impl::on_place(caf::event_based_actor* self, const std::string& peer, const std::string& blob, uint64_t id,
                                  uint32_t attempt) {
  caf::actor target;
  caf::duration timeout{cfg.forward_timeout};
  {
    std::lock_guard lock(mu);
    auto p = peers.find(peer);
    if (p != peers.end() && p->second.alive)
      target = p->second.handle;
    auto it = origins.find(id);
    origin_part* part = it == origins.end() ? nullptr : it->second.part(attempt);
    if (part && part->kv) // the peer fetches the KV blocks before it answers
      timeout = caf::duration{cfg.forward_timeout + cfg.kv_budget};
  }
  auto failed = [=, this](const std::string& why, engine_errc err) {
    std::lock_guard lock(mu);
    auto it = origins.find(id);
    origin_part* part = it == origins.end() ? nullptr : it->second.part(attempt);
    if (!part)
      return;
    if (err == engine_errc::invalid_request) { // the same request would fail anywhere
      fail(id, it->second, err, why);
      return;
    }
    spdlog::warn("cluster: placing request {} on {} failed ({}); trying another node", id, peer, why);
    release_outstanding(*part);
    origin_part again{part->choices};
    it->second.parts.erase(it->second.parts.begin() + (part - it->second.parts.data()));
    it->second.pause_pending = false;
    if (!place(id, std::move(again), {peer}, {}, nullptr))
      ++counters.failover_errors;
  };
  if (!target)
    return failed("peer gone", engine_errc::executor_failed);
  self->request(target, timeout, forward_atom_v, blob)
      .then(
          [=, this](const std::string& reply) {
            forward_reply_msg r;
            try {
              decode(reply, r);
            } catch (const wire_error& e) {
              return failed(e.what(), engine_errc::executor_failed);
            }
            if (r.error != engine_errc::none)
              failed(r.message, r.error);
          },
          [=, this](const caf::error& err) { failed(caf::to_string(err), engine_errc::executor_failed); });
}

void cluster_node::impl::on_cancel_msg(caf::event_based_actor* self, const std::string& blob) {
  cancel_msg m;
  std::lock_guard lock(mu);
  if (decode_or_count(blob, m))
    return;
  const auto sender = caf::actor_cast<caf::actor_addr>(self->current_sender());
  for (const auto& [engine_id, x] : execs)
    if (x.origin_id == m.origin_id && x.attempt == m.attempt && x.origin.address() == sender) {
      eng.cancel(engine_id);
      break;
    }
}

} // namespace actorserve::cluster

// Routing: placing a request on a node (router_policy over this node and its peers), forwarding
// it to a peer, relaying the peer's output events back in order, and cancelling remote attempts.

#include "actors/cluster/node_impl.hpp"

#include <spdlog/spdlog.h>

namespace actorserve::cluster {

// Helpers with `mu` held.

void cluster_node::impl::note_prefixes(const std::vector<uint64_t>& hashes) {
  for (uint64_t h : hashes)
    if (own_prefixes.insert(h).second)
      new_prefixes.push_back(h);
  if (own_prefixes.size() > max_prefixes_per_node)
    own_prefixes.clear();
}

// Ends a request with an error event (no node could take it).
void cluster_node::impl::fail(uint64_t id, origin_req& o, engine_errc err, const std::string& why) {
  request_output out;
  out.request_id = id;
  out.finished = true;
  out.error = err;
  out.error_message = why;
  out.usage.prompt_tokens = int32_t(o.original.prompt_token_ids.size());
  out.usage.completion_tokens = int32_t(o.received.size());
  choice_delta d;
  d.finish = finish_reason::abort;
  out.choices.push_back(d);
  auto sink = std::move(o.sink);
  origins.erase(id);
  if (sink)
    sink(std::move(out));
}

// Places (or re-places) request `id`; false with `result` set when it failed at once.
bool cluster_node::impl::place(uint64_t id, const std::vector<std::string>& exclude, submit_result* result) {
  origin_req& o = origins.at(id);
  generate_request req = o.original;
  req.id = 0;
  const int32_t done_tokens = int32_t(o.received.size());
  if (done_tokens > 0) {
    req.prompt_token_ids.insert(req.prompt_token_ids.end(), o.received.begin(), o.received.end());
    req.max_tokens -= done_tokens;
    req.min_tokens = std::max(0, req.min_tokens - done_tokens);
    o.resumed_tokens = req.prompt_token_ids.size();
  }
  if (req.max_tokens <= 0) { // everything was delivered but the final event
    request_output out;
    out.request_id = id;
    out.finished = true;
    out.usage = {int32_t(o.original.prompt_token_ids.size()), done_tokens};
    choice_delta d;
    d.finish = finish_reason::length;
    out.choices.push_back(d);
    auto sink = std::move(o.sink);
    origins.erase(id);
    sink(std::move(out));
    return true;
  }
  const auto hashes = prefix_block_hashes(req.prompt_token_ids, cfg.block_size, cfg.affinity_blocks);
  // Views: this node first, then the peers.
  std::vector<node_view> views;
  const engine_stats s = eng.stats();
  int32_t local_outstanding = 0;
  for (const auto& [oid, other] : origins)
    if (other.executor == cfg.name)
      ++local_outstanding;
  views.push_back({cfg.name, true, draining.load() || s.draining, s.num_running, s.num_waiting, s.kv_usage,
                   cfg.capacity, local_outstanding, &own_prefixes});
  std::vector<peer_state*> order{nullptr};
  for (auto& [name, p] : peers) {
    views.push_back({name, p.alive, p.load.draining, p.load.running, p.load.waiting, p.load.kv_usage,
                     p.load.capacity, p.outstanding, &p.prefixes});
    order.push_back(&p);
  }
  const auto decision = router.pick(views, hashes, exclude);
  if (!decision) {
    if (result)
      *result = {0, engine_errc::overloaded, "no cluster node can take the request (all draining or lost)"};
    else
      fail(id, o, engine_errc::executor_failed, "no cluster node could resume the request");
    return false;
  }
  if (decision->affinity)
    ++counters.affinity_hits;
  ++o.attempt;
  const uint32_t attempt = o.attempt;
  peer_state* target = order[decision->node];
  if (!target) {
    o.executor = cfg.name;
    ++counters.routed_local;
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
    o.local_id = r.request_id;
    note_prefixes(hashes);
    return true;
  }
  o.executor = target->name;
  ++target->outstanding;
  ++counters.routed_remote;
  caf::anon_send(node, place_atom_v, target->name, encode(forward_msg{id, attempt, std::move(req)}), id, attempt);
  return true;
}

// An event of request `id`'s attempt `attempt` (from the local engine or a peer).
void cluster_node::impl::on_output(uint64_t id, uint32_t attempt, request_output&& out, bool* stale) {
  output_sink sink;
  {
    std::lock_guard lock(mu);
    auto it = origins.find(id);
    if (it == origins.end() || it->second.attempt != attempt) {
      if (stale)
        *stale = !out.finished;
      return;
    }
    origin_req& o = it->second;
    // An engine going away mid-request (its node draining or failing): resume elsewhere.
    if (out.finished && (out.error == engine_errc::shutting_down || out.error == engine_errc::executor_failed) &&
        o.original.n == 1) {
      // The tokens of this last event are not delivered: resume from what the client has.
      spdlog::warn("cluster: request {} ended on {} with '{}': resuming elsewhere", id, o.executor,
                   out.error_message);
      resume(id, o.executor, false);
      return;
    }
    const auto now = clock_type::now();
    for (const choice_delta& c : out.choices)
      if (c.index == 0)
        o.received.insert(o.received.end(), c.token_ids.begin(), c.token_ids.end());
    if (o.pause_pending && !out.choices.empty()) {
      const double pause_s = std::chrono::duration<double>(now - o.loss_at).count();
      o.pause_pending = false;
      if (o.migration)
        counters.migrate_seconds_total += pause_s;
      else
        counters.last_failover_pause_s = pause_s;
      counters.migrated_tokens_total += int64_t(o.resumed_tokens);
    }
    o.last_event = now;
    out.request_id = id;
    if (o.attempt > 1) {
      out.usage.prompt_tokens = int32_t(o.original.prompt_token_ids.size());
      out.usage.completion_tokens += o.completion_before;
    }
    sink = o.sink;
    if (out.finished) {
      release_outstanding(o);
      origins.erase(it);
    }
  }
  // Outside the lock: the client's sink is quick, but need not be ours to serialize... it is
  // called in order because one attempt's events arrive in order through one path.
  sink(std::move(out));
}

// ---- node actor handlers ------------------------------------------------------------------

std::string cluster_node::impl::on_forward(caf::event_based_actor* self, const std::string& blob) {
  auto origin = caf::actor_cast<caf::actor>(self->current_sender());
  forward_msg m;
  {
    std::lock_guard lock(mu);
    if (!peer_by_addr(origin.address()))
      return encode(forward_reply_msg{engine_errc::invalid_request, "not a cluster peer (no handshake)"});
    try {
      decode(blob, m);
    } catch (const wire_error& e) {
      ++counters.malformed_messages;
      spdlog::warn("cluster: refused a malformed forwarded request: {}", e.what());
      return encode(forward_reply_msg{engine_errc::invalid_request, std::string("malformed: ") + e.what()});
    }
    if (draining.load())
      return encode(forward_reply_msg{engine_errc::shutting_down, "node is draining"});
  }
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
  try {
    decode(blob, m);
  } catch (const wire_error& e) {
    std::lock_guard lock(mu);
    ++counters.malformed_messages;
    spdlog::warn("cluster: malformed output event: {}", e.what());
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
  {
    std::lock_guard lock(mu);
    auto p = peers.find(peer);
    if (p != peers.end() && p->second.alive)
      target = p->second.handle;
  }
  auto failed = [=, this](const std::string& why, engine_errc err) {
    std::lock_guard lock(mu);
    auto it = origins.find(id);
    if (it == origins.end() || it->second.attempt != attempt)
      return;
    if (err == engine_errc::invalid_request) { // the same request would fail anywhere
      release_outstanding(it->second);
      fail(id, it->second, err, why);
      return;
    }
    spdlog::warn("cluster: placing request {} on {} failed ({}); trying another node", id, peer, why);
    release_outstanding(it->second);
    it->second.pause_pending = false;
    if (!place(id, {peer}, nullptr))
      ++counters.failover_errors;
  };
  if (!target)
    return failed("peer gone", engine_errc::executor_failed);
  self->request(target, cfg.forward_timeout, forward_atom_v, blob)
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
  try {
    decode(blob, m);
  } catch (const wire_error& e) {
    ++counters.malformed_messages;
    return;
  }
  const auto sender = caf::actor_cast<caf::actor_addr>(self->current_sender());
  for (const auto& [engine_id, x] : execs)
    if (x.origin_id == m.origin_id && x.attempt == m.attempt && x.origin.address() == sender) {
      eng.cancel(engine_id);
      break;
    }
}

} // namespace actorserve::cluster

// Failover, migration and drain: moving a request off its node by recomputation (prompt + the
// tokens the client already received) and draining this node before it exits.

#include "actors/cluster/node_impl.hpp"

#include <spdlog/spdlog.h>

namespace actorserve::cluster {

void cluster_node::impl::resume(uint64_t id, uint32_t attempt, const std::string& lost, bool migration,
                                const std::string& to) {
  auto it = origins.find(id);
  origin_part* part = it == origins.end() ? nullptr : it->second.part(attempt);
  if (!part)
    return;
  origin_req& o = it->second;
  release_outstanding(*part);
  const std::vector<int32_t> choices = part->choices;
  o.parts.erase(o.parts.begin() + (part - o.parts.data()));
  // Each unfinished choice resumes on its own, from the tokens its client has received (an
  // n = 1 request with that choice's seed); finished choices are not repeated.
  std::vector<origin_part> again;
  for (int32_t c : choices)
    if (!o.choice_done[size_t(c)])
      again.push_back(origin_part{{c}});
  if (again.size() == size_t(o.original.n) && o.completion_tokens() == 0)
    again = {origin_part{choices}}; // nothing delivered yet: place the whole request again
  if (!o.pause_pending) {
    o.pause_pending = true;
    o.loss_at = migration ? clock_type::now() : o.last_event;
  }
  o.migration = migration;
  if (migration)
    ++counters.migrated;
  else
    ++counters.failed_over;
  for (origin_part& p : again) {
    if (!origins.count(id))
      return; // failed (no node) or finished while placing the previous choice
    if (!place(id, std::move(p), {lost}, to, nullptr) && !migration)
      ++counters.failover_errors;
  }
}

void cluster_node::impl::release_outstanding(const origin_part& part) {
  auto p = peers.find(part.executor);
  if (p != peers.end() && p->second.outstanding > 0)
    --p->second.outstanding;
}

// ---- node actor handlers ------------------------------------------------------------------

void cluster_node::impl::on_migrate(caf::event_based_actor* self, const std::string& blob) {
  migrate_msg m;
  std::lock_guard lock(mu);
  if (decode_or_count(blob, m))
    return;
  auto it = origins.find(m.origin_id);
  origin_part* part = it == origins.end() ? nullptr : it->second.part(m.attempt);
  peer_state* p = peer_by_addr(caf::actor_cast<caf::actor_addr>(self->current_sender()));
  if (!part || !p || part->executor != p->name)
    return;
  self->send(p->handle, cancel_atom_v, encode(cancel_msg{m.origin_id, m.attempt}));
  if (m.kv_transfer_id != 0) // the sender exported the placement's K/V: the next node fetches it
    it->second.kv_from = {p->name, m.kv_transfer_id};
  // An admin migration names its target; one that is gone or is the sender: the router picks.
  const std::string to = !m.to.empty() && m.to != p->name && live_target(m.to) ? m.to : std::string{};
  resume(m.origin_id, m.attempt, p->name, true, to);
}

void cluster_node::impl::on_drain(caf::event_based_actor* self) {
  std::lock_guard lock(mu);
  const std::string report = encode(own_load());
  bool any_target = false;
  for (auto& [name, p] : peers) {
    if (p.alive)
      self->send(p.handle, load_atom_v, report);
    any_target = any_target || (p.alive && !p.load.draining);
  }
  // With no live peer to take them (a single replica, or the last one standing), moving
  // requests would only abort them: they finish here, within the drain timeout.
  if (!any_target) {
    spdlog::info("cluster: draining with no live peer: {} running request(s) finish on this node",
                 execs.size() + origins.size());
    return;
  }
  migrate_all_running(self, {});
}

void cluster_node::impl::migrate_all_running(caf::event_based_actor* self, const std::string& to) {
  const bool kv = kv_enabled();
  // Requests run here for peers: their origins re-place them (we cancel when told). With KV
  // shipping the migrate message follows the export and names the transfer.
  for (const auto& [engine_id, x] : execs) {
    migrate_msg m{x.origin_id, x.attempt};
    m.to = to;
    if (kv)
      export_for_migration(engine_id, [node = node, origin = x.origin, m](uint64_t transfer_id) mutable {
        m.kv_transfer_id = transfer_id;
        caf::anon_send(node, kv_ready_atom_v, origin, encode(m));
      });
    else
      self->send(x.origin, migrate_atom_v, encode(m));
  }
  // Our own clients' requests running here.
  std::vector<std::pair<uint64_t, origin_part>> local;
  for (const auto& [id, o] : origins)
    for (const origin_part& part : o.parts)
      if (part.executor == cfg.name)
        local.emplace_back(id, part);
  const std::string target = to == cfg.name ? std::string{} : to;
  for (const auto& [id, part] : local) {
    if (kv) {
      export_and_migrate_locked(id, part, target); // cancels and resumes once exported
      continue;
    }
    eng.cancel(part.local_id);
    resume(id, part.attempt, cfg.name, true, target);
  }
}

} // namespace actorserve::cluster

// Failover, migration and drain: moving a request off its node by recomputation (prompt + the
// tokens the client already received) and draining this node before it exits.

#include "actors/cluster/node_impl.hpp"

#include <spdlog/spdlog.h>

namespace actorserve::cluster {

// Moves a request off its node (`mu` held).
void cluster_node::impl::resume(uint64_t id, const std::string& lost, bool migration) {
  auto it = origins.find(id);
  if (it == origins.end())
    return;
  origin_req& o = it->second;
  release_outstanding(o);
  if (o.original.n != 1) {
    fail(id, o, engine_errc::executor_failed, "its node was lost, and requests with n > 1 cannot be resumed");
    ++counters.failover_errors;
    return;
  }
  o.completion_before = int32_t(o.received.size());
  o.pause_pending = true;
  o.migration = migration;
  o.loss_at = migration ? clock_type::now() : o.last_event;
  if (migration)
    ++counters.migrated;
  else
    ++counters.failed_over;
  if (!place(id, {lost}, nullptr) && !migration)
    ++counters.failover_errors;
}

void cluster_node::impl::release_outstanding(origin_req& o) {
  auto p = peers.find(o.executor);
  if (p != peers.end() && p->second.outstanding > 0)
    --p->second.outstanding;
}

// ---- node actor handlers ------------------------------------------------------------------

void cluster_node::impl::on_migrate(caf::event_based_actor* self, const std::string& blob) {
  migrate_msg m;
  std::lock_guard lock(mu);
  try {
    decode(blob, m);
  } catch (const wire_error& e) {
    ++counters.malformed_messages;
    return;
  }
  auto it = origins.find(m.origin_id);
  peer_state* p = peer_by_addr(caf::actor_cast<caf::actor_addr>(self->current_sender()));
  if (it == origins.end() || it->second.attempt != m.attempt || !p || it->second.executor != p->name)
    return;
  self->send(p->handle, cancel_atom_v, encode(cancel_msg{m.origin_id, m.attempt}));
  resume(m.origin_id, p->name, true);
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
  for (const auto& [engine_id, x] : execs)
    self->send(x.origin, migrate_atom_v, encode(migrate_msg{x.origin_id, x.attempt}));
  std::vector<uint64_t> local;
  for (const auto& [id, o] : origins)
    if (o.executor == cfg.name)
      local.push_back(id);
  for (uint64_t id : local) {
    eng.cancel(origins.at(id).local_id);
    resume(id, cfg.name, true);
  }
}

} // namespace actorserve::cluster

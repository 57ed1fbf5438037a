// Migration by KV shipping (actors/cluster/kv_migration.hpp): the source node exports the
// placement's K/V into its export store and names the transfer in the migrate message (or in
// the local resume); the node that runs the placement next pulls the chunks from the source
// before submitting it with generate_request::kv_import. Every failure falls back to
// recomputation: the request goes on with kv_import unset.

#include "actors/cluster/node_impl.hpp"

#include <spdlog/spdlog.h>

namespace actorserve::cluster {

bool cluster_node::impl::kv_enabled() const {
  return cfg.migration == migration_method::kv && !cfg.model_id.empty() && eng.kv_layout().has_value();
}

kv_source cluster_node::impl::take_kv_source(origin_req& o, const origin_part& part) {
  kv_source src = std::move(o.kv_from);
  o.kv_from = {};
  if (src && part.choices.size() != 1) { // a snapshot is one sequence's
    ++counters.kv_fallbacks;
    return {};
  }
  return src;
}

void cluster_node::impl::export_for_migration(uint64_t engine_id, std::function<void(uint64_t)> then) {
  eng.export_kv(engine_id, [this, engine_id, then = std::move(then)](kv_snapshot&& snap) {
    uint64_t transfer_id = 0;
    if (snap.error.empty()) {
      try {
        transfer_id = kv_exports.add(snap, cfg.model_id, cfg.kv_chunk_bytes);
      } catch (const wire_error& e) {
        snap.error = e.what();
      }
    }
    if (transfer_id) {
      std::lock_guard lock(mu);
      ++counters.kv_exports;
    } else {
      spdlog::warn("cluster: KV export of engine request {} failed ({}): it migrates by recomputation", engine_id,
                   snap.error);
    }
    then(transfer_id); // posts to the node actor; never takes `mu`
  });
}

void cluster_node::impl::export_and_migrate_locked(uint64_t id, const origin_part& part, const std::string& to) {
  origin_req& o = origins.at(id);
  if (!o.pause_pending) { // the client's pause counts from here, export included
    o.pause_pending = true;
    o.loss_at = clock_type::now();
  }
  export_for_migration(part.local_id, [node = node, id, attempt = part.attempt, to](uint64_t transfer_id) {
    caf::anon_send(node, kv_resume_atom_v, id, attempt, to, transfer_id);
  });
}

bool cluster_node::impl::place_local_with_kv(uint64_t id, origin_part part, generate_request req, kv_source src) {
  origin_req& o = origins.at(id);
  const uint32_t attempt = part.attempt;
  part.local_id = 0; // set once submitted, after the fetch
  o.parts.push_back(std::move(part));
  kv_local_pending[{id, attempt}] = {std::move(req), std::move(src)};
  caf::anon_send(node, kv_local_atom_v, id, attempt);
  return true;
}

void cluster_node::impl::fetch_for(caf::event_based_actor* self, const kv_source& src, uint64_t id,
                                   std::function<void(std::shared_ptr<const kv_snapshot>)> then) {
  caf::actor source;
  {
    std::lock_guard lock(mu);
    auto p = peers.find(src.node);
    if (p != peers.end() && p->second.alive)
      source = p->second.handle;
  }
  const auto layout = eng.kv_layout();
  const auto started = clock_type::now();
  auto done = [this, src, id, started, then = std::move(then)](std::shared_ptr<const kv_snapshot> snap,
                                                                const std::string& error) {
    const double ms = std::chrono::duration<double, std::milli>(clock_type::now() - started).count();
    {
      std::lock_guard lock(mu);
      if (snap) {
        ++counters.kv_imports;
        counters.kv_bytes += int64_t(snap->data.size());
      } else {
        ++counters.kv_fallbacks;
      }
    }
    if (snap)
      spdlog::info("cluster: request {}: fetched K/V of {} tokens ({} bytes) from {} in {:.1f} ms", id,
                   snap->token_ids.size(), snap->data.size(), src.node, ms);
    else
      spdlog::warn("cluster: request {}: KV transfer {} from {} refused: {}; resuming by recomputation", id,
                   src.transfer_id, src.node, error);
    then(std::move(snap));
  };
  if (!layout)
    return done(nullptr, "this node's backend cannot import KV blocks");
  if (!source)
    return done(nullptr, "the source node is not connected");
  fetch_kv(self, source, src.transfer_id, cfg.model_id, *layout, cfg.kv_fetch_timeout, cfg.kv_budget, std::move(done));
}

// ---- node actor handlers ------------------------------------------------------------------

std::string cluster_node::impl::on_kv_fetch(caf::event_based_actor* self, const std::string& blob) {
  {
    std::lock_guard lock(mu);
    if (!peer_by_addr(caf::actor_cast<caf::actor_addr>(self->current_sender())))
      return encode(kv_refusal{"not a cluster peer (no handshake)"});
  }
  return kv_exports.serve(blob);
}

caf::result<std::string> cluster_node::impl::on_forward_kv(caf::event_based_actor* self, caf::actor origin,
                                                         forward_msg m) {
  auto rp = self->make_response_promise<std::string>();
  auto msg = std::make_shared<forward_msg>(std::move(m));
  const kv_source src{msg->kv_node, msg->kv_transfer_id};
  fetch_for(self, src, msg->origin_id, [this, self, rp, origin, msg](std::shared_ptr<const kv_snapshot> snap) mutable {
    msg->request.kv_import = std::move(snap);
    rp.deliver(submit_forwarded(self, origin, std::move(*msg)));
  });
  return rp;
}

void cluster_node::impl::on_kv_local(caf::event_based_actor* self, uint64_t id, uint32_t attempt) {
  kv_source src;
  {
    std::lock_guard lock(mu);
    auto it = kv_local_pending.find({id, attempt});
    if (it == kv_local_pending.end())
      return;
    src = it->second.src;
  }
  fetch_for(self, src, id, [this, id, attempt](std::shared_ptr<const kv_snapshot> snap) {
    std::lock_guard lock(mu);
    auto pending = kv_local_pending.find({id, attempt});
    if (pending == kv_local_pending.end())
      return;
    generate_request req = std::move(pending->second.req);
    kv_local_pending.erase(pending);
    auto it = origins.find(id);
    origin_part* part = it == origins.end() ? nullptr : it->second.part(attempt);
    if (!part)
      return; // cancelled or moved on while fetching
    req.kv_import = std::move(snap);
    submit_result r = eng.submit(std::move(req), [this, id, attempt](request_output&& out) {
      on_output(id, attempt, std::move(out), nullptr);
    });
    if (!r) {
      fail(id, it->second, r.error, r.message);
      return;
    }
    part->local_id = r.request_id;
  });
}

void cluster_node::impl::on_kv_resume(uint64_t id, uint32_t attempt, const std::string& to, uint64_t transfer_id) {
  std::lock_guard lock(mu);
  auto it = origins.find(id);
  origin_part* part = it == origins.end() ? nullptr : it->second.part(attempt);
  if (!part || part->executor != cfg.name) {
    spdlog::info("cluster: request {} finished or moved while its K/V was exported", id);
    return;
  }
  eng.cancel(part->local_id);
  if (transfer_id)
    it->second.kv_from = {cfg.name, transfer_id};
  const std::string target = to == cfg.name || (!to.empty() && !live_target(to)) ? std::string{} : to;
  resume(id, attempt, cfg.name, true, target);
}

void cluster_node::impl::on_kv_migrate(caf::event_based_actor* self, const std::string& blob) {
  migrate_msg m;
  if (decode_or_count(blob, m))
    return;
  auto origin = caf::actor_cast<caf::actor>(self->current_sender());
  std::lock_guard lock(mu);
  for (const auto& [engine_id, x] : execs)
    if (x.origin_id == m.origin_id && x.attempt == m.attempt && x.origin == origin) {
      export_for_migration(engine_id, [node = node, origin, m](uint64_t transfer_id) mutable {
        m.kv_transfer_id = transfer_id;
        caf::anon_send(node, kv_ready_atom_v, origin, encode(m));
      });
      return;
    }
  spdlog::info("cluster: KV export asked for request {} attempt {}, which does not run here (any more): the origin "
               "recomputes it", m.origin_id, m.attempt);
  self->send(origin, migrate_atom_v, encode(m));
}

} // namespace actorserve::cluster

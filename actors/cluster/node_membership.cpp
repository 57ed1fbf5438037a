// Membership: handshake (protocol version, incarnation), load reports that double as heartbeats,
// asynchronous connecting to the configured peers, and declaring peers lost.

#include "actors/cluster/node_impl.hpp"
#include "actors/cluster/tls_caf.hpp"

#include <spdlog/spdlog.h>

namespace actorserve::cluster {

// Helpers with `mu` held.

void cluster_node::impl::peer_lost(peer_state& p, const std::string& why) {
  if (!p.alive)
    return;
  p.alive = false;
  ++counters.peers_lost;
  std::vector<std::pair<uint64_t, uint32_t>> placements; // (request, attempt) running there
  for (const auto& [id, o] : origins)
    for (const origin_part& part : o.parts)
      if (part.executor == p.name)
        placements.emplace_back(id, part.attempt);
  spdlog::warn("cluster: peer {} (incarnation {}) lost: {}; resuming its {} placements elsewhere", p.name,
               p.incarnation, why, placements.size());
  p.outstanding = 0;
  for (const auto& [id, attempt] : placements)
    resume(id, attempt, p.name, false);
}

peer_state* cluster_node::impl::peer_by_addr(const caf::actor_addr& a) {
  for (auto& [name, p] : peers)
    if (p.handle && p.handle.address() == a)
      return &p;
  return nullptr;
}

load_msg cluster_node::impl::own_load() {
  const engine_stats s = eng.stats();
  load_msg m;
  m.name = cfg.name;
  m.incarnation = cfg.incarnation;
  m.running = s.num_running;
  m.waiting = s.num_waiting;
  m.capacity = cfg.capacity;
  m.kv_usage = s.kv_usage;
  m.draining = draining.load() || s.draining;
  m.new_prefixes = std::move(new_prefixes);
  new_prefixes.clear();
  return m;
}

// ---- node actor handlers ------------------------------------------------------------------

void cluster_node::impl::on_down(const caf::down_msg& dm) {
  std::lock_guard lock(mu);
  for (auto& [name, p] : peers)
    if (p.handle && p.handle.address() == dm.source) {
      peer_lost(p, "connection down");
      p.handle = nullptr;
    }
}

// Accepts a peer (handshake done either way).
void cluster_node::impl::add_peer(caf::event_based_actor* self, const std::string& name, uint64_t incarnation,
                                  caf::actor handle) {
  std::lock_guard lock(mu);
  peer_state& p = peers[name];
  if (p.alive && p.incarnation != incarnation)
    peer_lost(p, "restarted as incarnation " + std::to_string(incarnation));
  const bool was_alive = p.alive && p.handle == handle;
  p.name = name;
  p.incarnation = incarnation;
  p.handle = handle;
  p.alive = true;
  p.last_heard = clock_type::now();
  if (p.load.name.empty())
    p.load.capacity = 1;
  if (!was_alive) {
    p.prefixes.clear();
    self->monitor(handle);
    spdlog::info("cluster: peer {} joined (incarnation {})", name, incarnation);
  }
  known_incarnations[name] = std::max(known_incarnations[name], incarnation);
}

void cluster_node::impl::on_tick(caf::event_based_actor* self, const std::shared_ptr<std::set<std::string>>& connecting) {
  self->delayed_send(self, cfg.report_interval, tick_atom_v);
  std::vector<std::string> to_connect;
  std::string report;
  std::vector<caf::actor> targets;
  {
    std::lock_guard lock(mu);
    const auto now = clock_type::now();
    int32_t alive = 0;
    for (auto& [name, p] : peers) {
      if (p.alive && now - p.last_heard > cfg.suspect_after) {
        counters.last_detect_s = std::chrono::duration<double>(now - p.last_heard).count();
        peer_lost(p, "silent for " + std::to_string(counters.last_detect_s) + " s (frozen?)");
      }
      if (p.alive) {
        ++alive;
        targets.push_back(p.handle);
      }
    }
    counters.peers_alive = alive;
    report = encode(own_load());
    for (const std::string& addr : cfg.peers) {
      if (addr == cfg.name || connecting->count(addr) || self_addrs.count(addr))
        continue;
      auto retry = retry_at.find(addr);
      if (retry != retry_at.end() && now < retry->second)
        continue;
      auto known = addr_names.find(addr);
      auto p = peers.find(known == addr_names.end() ? addr : known->second);
      if (p == peers.end() || !p->second.alive)
        to_connect.push_back(addr);
    }
  }
  for (const caf::actor& t : targets)
    self->send(t, load_atom_v, report);
  for (const std::string& addr : to_connect) {
    std::pair<std::string, uint16_t> hp;
    try {
      hp = split_addr(addr);
    } catch (const std::exception& e) {
      spdlog::error("cluster: {}", e.what());
      continue;
    }
    connecting->insert(addr);
    auto mm = peer_connector(self->home_system(), cfg.tls.enabled());
    self->request(mm, std::chrono::seconds(2), caf::connect_atom_v, hp.first, hp.second)
        .then(
            [=, this](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) {
              auto handle = caf::actor_cast<caf::actor>(ptr);
              {
                std::lock_guard lock(mu);
                connect_failures.erase(addr);
              }
              if (!handle) {
                connecting->erase(addr);
                return;
              }
              if (handle == caf::actor(self)) { // our own address in the peer list
                std::lock_guard lock(mu);
                self_addrs.insert(addr);
                connecting->erase(addr);
                return;
              }
              hello_msg h{my_version(), cfg.name, cfg.incarnation};
              self->request(handle, std::chrono::seconds(3), hello_atom_v, encode(h))
                  .then(
                      [=, this](const std::string& blob) {
                        connecting->erase(addr);
                        hello_reply_msg r;
                        try {
                          decode(blob, r);
                        } catch (const wire_error& e) {
                          spdlog::error("cluster: peer {} answered our hello with {}", addr, e.what());
                          return;
                        }
                        if (!r.accepted) {
                          spdlog::error("cluster: peer {} refused us: {}", addr, r.reason);
                          std::lock_guard lock(mu);
                          retry_at[addr] = clock_type::now() + std::chrono::seconds(5);
                          return;
                        }
                        {
                          std::lock_guard lock(mu);
                          auto known = known_incarnations.find(r.name);
                          addr_names[addr] = r.name;
                          if (known != known_incarnations.end() && r.incarnation < known->second) {
                            retry_at[addr] = clock_type::now() + std::chrono::seconds(5);
                            ++counters.handshakes_refused;
                            spdlog::error("cluster: refused peer {} at {}: stale incarnation {} (current {})",
                                          r.name, addr, r.incarnation, known->second);
                            return;
                          }
                        }
                        add_peer(self, r.name, r.incarnation, handle);
                      },
                      [=, this](const caf::error& err) {
                        connecting->erase(addr);
                        spdlog::warn("cluster: hello to {} failed: {}", addr, caf::to_string(err));
                      });
            },
            [=, this](const caf::error& err) { // not up yet, or refused: retried next tick
              connecting->erase(addr);
              note_connect_failure(addr, err);
            });
  }
}

std::string cluster_node::impl::on_hello(caf::event_based_actor* self, const std::string& blob) {
  hello_msg h;
  hello_reply_msg r{false, "", cfg.name, cfg.incarnation};
  try {
    decode(blob, h);
  } catch (const wire_error& e) {
    r.reason = e.what();
    std::lock_guard lock(mu);
    ++counters.handshakes_refused;
    spdlog::error("cluster: refused a peer's hello: {}", e.what());
    return encode(r);
  }
  {
    std::lock_guard lock(mu);
    auto known = known_incarnations.find(h.name);
    if (h.version != my_version()) {
      r.reason = "protocol version " + std::to_string(h.version) + ", this node speaks " +
                 std::to_string(my_version());
    } else if (h.name == cfg.name) {
      r.reason = "peer has this node's own name " + h.name;
    } else if (known != known_incarnations.end() && h.incarnation < known->second) {
      r.reason = "stale incarnation " + std::to_string(h.incarnation) + " of node " + h.name + " (current " +
                 std::to_string(known->second) + ")";
    }
    if (!r.reason.empty()) {
      ++counters.handshakes_refused;
      spdlog::error("cluster: refused peer {}: {}", h.name, r.reason);
      return encode(r);
    }
  }
  add_peer(self, h.name, h.incarnation, caf::actor_cast<caf::actor>(self->current_sender()));
  r.accepted = true;
  return encode(r);
}

void cluster_node::impl::on_load(caf::event_based_actor* self, const std::string& blob) {
  std::lock_guard lock(mu);
  peer_state* p = peer_by_addr(caf::actor_cast<caf::actor_addr>(self->current_sender()));
  load_msg m;
  if (auto error = decode_or_count(blob, m)) {
    spdlog::warn("cluster: malformed load report: {}", *error);
    return;
  }
  if (!p || m.incarnation != p->incarnation)
    return; // not (or no longer) a peer
  if (!p->alive)
    spdlog::info("cluster: peer {} is back", p->name);
  p->alive = true;
  p->last_heard = clock_type::now();
  if (p->prefixes.size() + m.new_prefixes.size() > max_prefixes_per_node)
    p->prefixes.clear();
  p->prefixes.insert(m.new_prefixes.begin(), m.new_prefixes.end());
  m.new_prefixes.clear();
  p->load = std::move(m);
}

// Connection attempts fail silently while a peer starts; a peer that stays unreachable gets a
// log line saying why, once after ~2 s and then every ~30 s. A TLS handshake refused by either
// side (no TLS, another CA) looks like this too: CAF only reports a failed connection.
void cluster_node::impl::note_connect_failure(const std::string& addr, const caf::error& err) {
  std::lock_guard lock(mu);
  const int32_t n = ++connect_failures[addr];
  if (n == 8 || n % 120 == 0)
    spdlog::warn("cluster: cannot connect to peer {} ({} attempts): {}; this node uses {} between nodes: a TLS "
                 "cluster refuses nodes without TLS or with a certificate of another CA (--cluster-tls-*)",
                 addr, n, caf::to_string(err), cfg.tls.enabled() ? "TLS" : "no TLS");
}

} // namespace actorserve::cluster

#include "actors/cluster/node.hpp"

#include "actors/cluster/node_protocol.hpp"
#include "actors/cluster/wire.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <unistd.h>

namespace actorserve::cluster {

void configure_cluster_system(caf::actor_system_config& cfg) {
  register_engine_types(cfg);
  cfg.add_message_types<caf::id_block::actorserve_cluster>();
  cfg.load<caf::io::middleman>();
  // 0.17 defaults both to 0 (a frozen peer would only be noticed by TCP): set them.
  cfg.set("middleman.heartbeat-interval", caf::timespan{std::chrono::milliseconds(500)});
  cfg.set("middleman.connection-timeout", caf::timespan{std::chrono::seconds(4)});
  cfg.set("middleman.app-identifiers", std::vector<std::string>{"actorserve-cluster"});
  cfg.set("scheduler.max-threads", size_t(2));
}

std::vector<std::string> dns_peers(const std::string& hostname, const std::string& dns_name, int32_t size,
                                   uint16_t port) {
  const auto dash = hostname.rfind('-');
  if (dash == std::string::npos || dash + 1 >= hostname.size() ||
      hostname.find_first_not_of("0123456789", dash + 1) != std::string::npos)
    throw std::runtime_error("--cluster-dns: hostname '" + hostname +
                             "' is not <statefulset>-<ordinal> (run as a StatefulSet pod, or use --cluster-peers)");
  const std::string base = hostname.substr(0, dash);
  std::vector<std::string> peers;
  for (int32_t i = 0; i < size; ++i)
    peers.push_back(base + "-" + std::to_string(i) + "." + dns_name + ":" + std::to_string(port));
  return peers;
}

namespace {

using clock_type = engine_clock;
constexpr size_t max_prefixes_per_node = 1 << 16;

struct peer_state {
  std::string name;
  uint64_t incarnation = 0;
  caf::actor handle;
  bool alive = false;
  clock_type::time_point last_heard{};
  load_msg load;
  std::unordered_set<uint64_t> prefixes;
  int32_t outstanding = 0;
};

struct origin_req {
  generate_request original;
  output_sink sink;
  std::vector<int32_t> received; // choice 0's tokens the client has been given
  int32_t completion_before = 0; // tokens received before the current attempt
  uint32_t attempt = 0;
  std::string executor;          // node name (this node's own name when local)
  uint64_t local_id = 0;         // engine id when local
  clock_type::time_point last_event{};
  clock_type::time_point loss_at{}; // pause measurement after a failover/migration
  bool pause_pending = false;
  bool migration = false;
  size_t resumed_tokens = 0;
};

struct exec_req {
  caf::actor origin;
  uint64_t origin_id = 0;
  uint32_t attempt = 0;
};

std::pair<std::string, uint16_t> split_addr(const std::string& addr) {
  const auto colon = addr.rfind(':');
  if (colon == std::string::npos)
    throw std::runtime_error("cluster peer '" + addr + "' is not host:port");
  return {addr.substr(0, colon), uint16_t(std::stoi(addr.substr(colon + 1)))};
}

} // namespace

struct cluster_node::impl {
  cluster_config cfg;
  engine& eng;
  std::unique_ptr<caf::actor_system_config> sys_cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::actor node;
  uint16_t bound_port = 0;

  mutable std::mutex mu; // everything below
  std::map<std::string, peer_state> peers;
  std::map<std::string, uint64_t> known_incarnations; // highest seen per name (stale refusal)
  std::unordered_map<uint64_t, origin_req> origins;
  std::unordered_map<uint64_t, exec_req> execs; // local engine id -> a peer's request
  std::unordered_set<uint64_t> own_prefixes;
  std::vector<uint64_t> new_prefixes; // not yet reported
  std::set<std::string> self_addrs;                        // peer-list entries that are this node
  std::map<std::string, std::string> addr_names;           // peer-list entry -> node name
  std::map<std::string, clock_type::time_point> retry_at;  // refused: do not knock again before
  router_policy router;
  cluster_counters counters;

  uint32_t my_version() const { return cfg.protocol_version ? cfg.protocol_version : protocol_version; }
  std::atomic<uint64_t> next_id{1};
  std::atomic<bool> draining{false};

  impl(cluster_config c, engine& e) : cfg(std::move(c)), eng(e), router(cfg.policy) {}

  // ---- helpers, all with `mu` held ----------------------------------------------------------

  void note_prefixes(const std::vector<uint64_t>& hashes) {
    for (uint64_t h : hashes)
      if (own_prefixes.insert(h).second)
        new_prefixes.push_back(h);
    if (own_prefixes.size() > max_prefixes_per_node)
      own_prefixes.clear();
  }

  // Ends a request with an error event (no node could take it).
  void fail(uint64_t id, origin_req& o, engine_errc err, const std::string& why) {
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
  bool place(uint64_t id, const std::vector<std::string>& exclude, submit_result* result) {
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

  // Moves a request off its node; `why` for the log.
  void resume(uint64_t id, const std::string& lost, bool migration) {
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

  void release_outstanding(origin_req& o) {
    auto p = peers.find(o.executor);
    if (p != peers.end() && p->second.outstanding > 0)
      --p->second.outstanding;
  }

  // An event of request `id`'s attempt `attempt` (from the local engine or a peer).
  void on_output(uint64_t id, uint32_t attempt, request_output&& out, bool* stale) {
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

  void peer_lost(peer_state& p, const std::string& why) {
    if (!p.alive)
      return;
    p.alive = false;
    ++counters.peers_lost;
    std::vector<uint64_t> ids;
    for (const auto& [id, o] : origins)
      if (o.executor == p.name)
        ids.push_back(id);
    spdlog::warn("cluster: peer {} (incarnation {}) lost: {}; resuming its {} requests elsewhere", p.name,
                 p.incarnation, why, ids.size());
    p.outstanding = 0;
    for (uint64_t id : ids)
      resume(id, p.name, false);
  }

  peer_state* peer_by_addr(const caf::actor_addr& a) {
    for (auto& [name, p] : peers)
      if (p.handle && p.handle.address() == a)
        return &p;
    return nullptr;
  }

  load_msg own_load() {
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

  caf::behavior behave(caf::event_based_actor* self);
};

// ---- the node actor ------------------------------------------------------------------------

caf::behavior cluster_node::impl::behave(caf::event_based_actor* self) {
  auto connecting = std::make_shared<std::set<std::string>>();
  self->set_down_handler([this](caf::down_msg& dm) {
    std::lock_guard lock(mu);
    for (auto& [name, p] : peers)
      if (p.handle && p.handle.address() == dm.source) {
        peer_lost(p, "connection down");
        p.handle = nullptr;
      }
  });
  self->set_default_handler([this](caf::scheduled_actor*, caf::message_view&) -> caf::result<caf::message> {
    std::lock_guard lock(mu);
    ++counters.malformed_messages;
    spdlog::warn("cluster: dropped a message of an unexpected type");
    return caf::sec::unexpected_message;
  });
  // Accepts a peer (handshake done either way).
  auto add_peer = [this, self](const std::string& name, uint64_t incarnation, caf::actor handle) {
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
  };

  self->delayed_send(self, cfg.report_interval, tick_atom_v);
  return {
      [=](tick_atom) {
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
          auto mm = self->home_system().middleman().actor_handle();
          self->request(mm, std::chrono::seconds(2), caf::connect_atom_v, hp.first, hp.second)
              .then(
                  [=](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) {
                    auto handle = caf::actor_cast<caf::actor>(ptr);
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
                            [=](const std::string& blob) {
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
                              add_peer(r.name, r.incarnation, handle);
                            },
                            [=](const caf::error& err) {
                              connecting->erase(addr);
                              spdlog::warn("cluster: hello to {} failed: {}", addr, caf::to_string(err));
                            });
                  },
                  [=](const caf::error&) { connecting->erase(addr); }); // not up yet: retried next tick
        }
      },
      [=](hello_atom, const std::string& blob) -> std::string {
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
        add_peer(h.name, h.incarnation, caf::actor_cast<caf::actor>(self->current_sender()));
        r.accepted = true;
        return encode(r);
      },
      [=](load_atom, const std::string& blob) {
        std::lock_guard lock(mu);
        peer_state* p = peer_by_addr(caf::actor_cast<caf::actor_addr>(self->current_sender()));
        load_msg m;
        try {
          decode(blob, m);
        } catch (const wire_error& e) {
          ++counters.malformed_messages;
          spdlog::warn("cluster: malformed load report: {}", e.what());
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
      },
      [=](forward_atom, const std::string& blob) -> std::string {
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
      },
      [=](relay_atom, const caf::actor& origin, const std::string& blob) { self->send(origin, output_atom_v, blob); },
      [=](output_atom, const std::string& blob) {
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
      },
      [=](place_atom, const std::string& peer, const std::string& blob, uint64_t id, uint32_t attempt) {
        caf::actor target;
        {
          std::lock_guard lock(mu);
          auto p = peers.find(peer);
          if (p != peers.end() && p->second.alive)
            target = p->second.handle;
        }
        auto failed = [=](const std::string& why, engine_errc err) {
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
                [=](const std::string& reply) {
                  forward_reply_msg r;
                  try {
                    decode(reply, r);
                  } catch (const wire_error& e) {
                    return failed(e.what(), engine_errc::executor_failed);
                  }
                  if (r.error != engine_errc::none)
                    failed(r.message, r.error);
                },
                [=](const caf::error& err) { failed(caf::to_string(err), engine_errc::executor_failed); });
      },
      [=](migrate_atom, const std::string& blob) {
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
      },
      [=](cancel_atom, const std::string& blob) {
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
      },
      [=](drain_atom) {
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
      },
  };
}

// ---- the public side -----------------------------------------------------------------------

cluster_node::cluster_node(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

cluster_node::~cluster_node() {
  if (impl_ && impl_->sys) {
    caf::anon_send_exit(impl_->node, caf::exit_reason::user_shutdown);
    impl_->sys.reset(); // waits for the actors; the middleman closes the connections
  }
}

std::unique_ptr<cluster_node> cluster_node::start(cluster_config config, engine& local) {
  if (config.incarnation == 0)
    config.incarnation = uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
  auto p = std::make_unique<impl>(std::move(config), local);
  p->sys_cfg = std::make_unique<caf::actor_system_config>();
  configure_cluster_system(*p->sys_cfg);
  p->sys = std::make_unique<caf::actor_system>(*p->sys_cfg);
  impl* raw = p.get();
  p->node = p->sys->spawn([raw](caf::event_based_actor* self) { return raw->behave(self); });
  const char* host = p->cfg.host.empty() ? nullptr : p->cfg.host.c_str();
  auto bound = p->sys->middleman().publish(p->node, p->cfg.port, host, true);
  if (!bound) {
    caf::anon_send_exit(p->node, caf::exit_reason::user_shutdown);
    throw std::runtime_error("cluster: cannot listen on port " + std::to_string(p->cfg.port) + ": " +
                             p->sys->render(bound.error()));
  }
  p->bound_port = *bound;
  if (p->cfg.name.empty()) {
    char hostname[256] = {};
    gethostname(hostname, sizeof hostname - 1);
    p->cfg.name = std::string(hostname) + ":" + std::to_string(p->bound_port);
  }
  spdlog::info("cluster: node {} (incarnation {}, protocol {}) listening on port {}, policy {}, peers {}", p->cfg.name,
               p->cfg.incarnation, p->cfg.protocol_version ? p->cfg.protocol_version : protocol_version,
               p->bound_port, to_string(p->cfg.policy), fmt::join(p->cfg.peers, ","));
  return std::unique_ptr<cluster_node>(new cluster_node(std::move(p)));
}

submit_result cluster_node::submit(generate_request request, output_sink sink) {
  impl& d = *impl_;
  const uint64_t id = d.next_id.fetch_add(1);
  std::lock_guard lock(d.mu);
  origin_req& o = d.origins[id];
  o.original = std::move(request);
  o.sink = std::move(sink);
  o.last_event = engine_clock::now();
  submit_result r{id, engine_errc::none, ""};
  if (!d.place(id, {}, &r)) {
    d.origins.erase(id);
    return r;
  }
  return {id, engine_errc::none, ""};
}

void cluster_node::cancel(uint64_t request_id) {
  impl& d = *impl_;
  std::lock_guard lock(d.mu);
  auto it = d.origins.find(request_id);
  if (it == d.origins.end())
    return;
  origin_req& o = it->second;
  if (o.executor == d.cfg.name) {
    d.eng.cancel(o.local_id);
  } else {
    auto p = d.peers.find(o.executor);
    if (p != d.peers.end() && p->second.handle)
      caf::anon_send(p->second.handle, cancel_atom_v, encode(cancel_msg{request_id, o.attempt}));
    d.release_outstanding(o);
    d.origins.erase(it);
  }
}

bool cluster_node::drain(std::chrono::milliseconds timeout) {
  impl& d = *impl_;
  d.draining.store(true);
  caf::anon_send(d.node, drain_atom_v);
  const auto deadline = engine_clock::now() + timeout;
  while (engine_clock::now() < deadline) {
    {
      std::lock_guard lock(d.mu);
      bool local = false;
      for (const auto& [id, o] : d.origins)
        local = local || o.executor == d.cfg.name;
      if (d.execs.empty() && !local)
        return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

uint16_t cluster_node::port() const { return impl_->bound_port; }
const std::string& cluster_node::name() const { return impl_->cfg.name; }

cluster_counters cluster_node::counters() const {
  std::lock_guard lock(impl_->mu);
  return impl_->counters;
}

std::string cluster_node::metrics_text(const std::string& model_name) const {
  const cluster_counters c = counters();
  const std::string l = "{model_name=\"" + model_name + "\",node=\"" + impl_->cfg.name + "\"}";
  std::string out;
  auto line = [&](const char* name, const char* type, const char* help, double v) {
    out += std::string("# HELP actorserve:") + name + " " + help + "\n# TYPE actorserve:" + name + " " + type +
           "\nactorserve:" + name + l + " " + std::to_string(v) + "\n";
  };
  line("cluster_routed_local_total", "counter", "Requests accepted here and placed on this node.",
       double(c.routed_local));
  line("cluster_routed_remote_total", "counter", "Requests accepted here and placed on a peer.",
       double(c.routed_remote));
  line("cluster_affinity_hits_total", "counter", "Placements on a node that had served the prompt's prefix.",
       double(c.affinity_hits));
  line("cluster_executed_for_peers_total", "counter", "Requests run here for another node's clients.",
       double(c.executed_for_peers));
  line("cluster_migrated_total", "counter", "Running requests moved to another node (drain).", double(c.migrated));
  line("cluster_failed_over_total", "counter", "Requests resumed after their node died or froze.",
       double(c.failed_over));
  line("cluster_failover_errors_total", "counter", "Requests no node could resume.", double(c.failover_errors));
  line("cluster_peers_lost_total", "counter", "Peers declared dead.", double(c.peers_lost));
  line("cluster_handshakes_refused_total", "counter", "Peers refused (wrong version, stale incarnation).",
       double(c.handshakes_refused));
  line("cluster_malformed_messages_total", "counter", "Cross-node messages refused as malformed.",
       double(c.malformed_messages));
  line("cluster_peers_alive", "gauge", "Peers connected and reporting.", double(c.peers_alive));
  line("cluster_last_detect_seconds", "gauge", "Silence before the last frozen peer was declared dead.",
       c.last_detect_s);
  line("cluster_last_failover_pause_seconds", "gauge", "Last event before a node loss to the first after the resume.",
       c.last_failover_pause_s);
  line("cluster_migrate_seconds_total", "counter", "Migration decision to first event on the new node, summed.",
       c.migrate_seconds_total);
  line("cluster_migrated_tokens_total", "counter", "Tokens recomputed by migrations and failovers.",
       double(c.migrated_tokens_total));
  return out;
}

} // namespace actorserve::cluster

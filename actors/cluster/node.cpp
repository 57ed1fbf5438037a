#include "actors/cluster/node.hpp"

#include "actors/cluster/node_impl.hpp"
#include "actors/cluster/kv_migration.hpp"
#include "actors/cluster/tls_caf.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <thread>
#include <unistd.h>

namespace actorserve::cluster {

void configure_cluster_system(caf::actor_system_config& cfg) {
  register_engine_types(cfg);
  cfg.add_message_types<caf::id_block::actorserve_cluster>();
  cfg.add_message_types<caf::id_block::actorserve_kv>();
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

std::pair<std::string, uint16_t> split_addr(const std::string& addr) {
  const auto colon = addr.rfind(':');
  if (colon == std::string::npos)
    throw std::runtime_error("cluster peer '" + addr + "' is not host:port");
  return {addr.substr(0, colon), uint16_t(std::stoi(addr.substr(colon + 1)))};
}

// ---- the node actor: its handlers live in node_membership/node_routing/node_failover.cpp ----

caf::behavior cluster_node::impl::behave(caf::event_based_actor* self) {
  auto connecting = std::make_shared<std::set<std::string>>();
  self->set_down_handler([this](caf::down_msg& dm) { on_down(dm); });
  self->set_default_handler([this](caf::scheduled_actor*, caf::message_view&) -> caf::result<caf::message> {
    malformed.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("cluster: dropped a message of an unexpected type");
    return caf::sec::unexpected_message;
  });
  self->delayed_send(self, cfg.report_interval, tick_atom_v);
  return {
      [=, this](tick_atom) { on_tick(self, connecting); },
      [=, this](hello_atom, const std::string& blob) -> std::string { return on_hello(self, blob); },
      [=, this](load_atom, const std::string& blob) { on_load(self, blob); },
      [=, this](forward_atom, const std::string& blob) -> caf::result<std::string> { return on_forward(self, blob); },
      [=, this](relay_atom, const caf::actor& origin, const std::string& blob) { self->send(origin, output_atom_v, blob); },
      [=, this](output_atom, const std::string& blob) { on_output_msg(self, blob); },
      [=, this](place_atom, const std::string& peer, const std::string& blob, uint64_t id, uint32_t attempt) {
        on_place(self, peer, blob, id, attempt);
      },
      [=, this](migrate_atom, const std::string& blob) { on_migrate(self, blob); },
      [=, this](cancel_atom, const std::string& blob) { on_cancel_msg(self, blob); },
      [=, this](drain_atom) { on_drain(self); },
      [=, this](cancel_to_atom, const caf::actor& peer, const std::string& blob) {
        self->send(peer, cancel_atom_v, blob);
      },
      [=, this](admin_atom, const std::string& to) {
        std::lock_guard lock(mu);
        migrate_all_running(self, to);
      },
      // migration by KV shipping (node_kv.cpp)
      [=, this](kv_fetch_atom, const std::string& blob) -> std::string { return on_kv_fetch(self, blob); },
      [=, this](kv_migrate_atom, const std::string& blob) { on_kv_migrate(self, blob); },
      [=, this](kv_migrate_atom, const caf::actor& peer, const std::string& blob) {
        self->send(peer, kv_migrate_atom_v, blob); // from the public side: sent by the node actor
      },
      [=, this](kv_ready_atom, const caf::actor& origin, const std::string& blob) {
        self->send(origin, migrate_atom_v, blob);
      },
      [=, this](kv_resume_atom, uint64_t id, uint32_t attempt, const std::string& to, uint64_t transfer_id) {
        on_kv_resume(id, attempt, to, transfer_id);
      },
      [=, this](kv_local_atom, uint64_t id, uint32_t attempt) { on_kv_local(self, id, attempt); },
  };
}

namespace {
std::vector<std::string> live_nodes_locked(const cluster_node::impl& d) {
  std::vector<std::string> out{d.cfg.name};
  for (const auto& [name, p] : d.peers)
    if (p.alive)
      out.push_back(name);
  return out;
}
} // namespace

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
  p->seed_state = (uint64_t(std::random_device{}()) << 32) | std::random_device{}();
  p->sys_cfg = std::make_unique<caf::actor_system_config>();
  configure_cluster_system(*p->sys_cfg);
  configure_tls(*p->sys_cfg, p->cfg.tls); // caf_openssl: peers must present a certificate of the CA
  if (const char* corrupt = std::getenv("ACTORSERVE_TEST_CORRUPT_KV_CHUNK")) // fault injection (tests)
    p->kv_exports.corrupt_chunk(std::atoi(corrupt));
  p->sys = std::make_unique<caf::actor_system>(*p->sys_cfg);
  impl* raw = p.get();
  p->node = p->sys->spawn([raw](caf::event_based_actor* self) { return raw->behave(self); });
  const char* host = p->cfg.host.empty() ? nullptr : p->cfg.host.c_str();
  auto bound = publish_node(*p->sys, p->node, p->cfg.port, host, p->cfg.tls.enabled());
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
  spdlog::info("cluster: node {} (incarnation {}, protocol {}) listening on port {}{}, policy {}, peers {}", p->cfg.name,
               p->cfg.incarnation, p->cfg.protocol_version ? p->cfg.protocol_version : protocol_version,
               p->bound_port, p->cfg.tls.enabled() ? " (TLS, peers verified against " + p->cfg.tls.ca_file + ")" : "",
               to_string(p->cfg.policy), fmt::join(p->cfg.peers, ","));
  return std::unique_ptr<cluster_node>(new cluster_node(std::move(p)));
}

submit_result cluster_node::submit(generate_request request, output_sink sink) {
  impl& d = *impl_;
  const uint64_t id = d.next_id.fetch_add(1);
  std::lock_guard lock(d.mu);
  origin_req& o = d.origins[id];
  o.original = std::move(request);
  // Resolved here, not by the executing engine: a choice resumed elsewhere continues its stream.
  if (!o.original.has_seed) {
    o.original.sampling.seed = d.draw_seed();
    o.original.has_seed = true;
  }
  const int32_t n = std::max(1, o.original.n);
  o.received.resize(size_t(n));
  o.choice_done.assign(size_t(n), false);
  o.sink = std::move(sink);
  o.last_event = engine_clock::now();
  submit_result r{id, engine_errc::none, ""};
  origin_part all;
  for (int32_t c = 0; c < n; ++c)
    all.choices.push_back(c);
  if (!d.place(id, std::move(all), {}, {}, &r)) {
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
  const bool all_local = std::all_of(o.parts.begin(), o.parts.end(),
                                     [&](const origin_part& p) { return p.executor == d.cfg.name; });
  for (const origin_part& part : o.parts)
    d.cancel_part(request_id, part);
  if (all_local)
    return; // the engine's final (cancelled) event ends the request
  for (const origin_part& part : o.parts)
    d.release_outstanding(part);
  d.origins.erase(it);
}

migrate_result cluster_node::migrate(uint64_t request_id, const std::string& to) {
  impl& d = *impl_;
  std::lock_guard lock(d.mu);
  auto it = d.origins.find(request_id);
  if (it == d.origins.end())
    return {404, "unknown request id " + std::to_string(request_id) +
                     " (not accepted by this node, or already finished; GET /admin/requests lists them)"};
  if (!to.empty() && !d.live_target(to)) {
    std::string known;
    for (const std::string& n : live_nodes_locked(d))
      known += (known.empty() ? "" : ", ") + n;
    return {404, "no live node named '" + to + "' that takes requests (live: " + known + ")"};
  }
  std::vector<origin_part> moving;
  for (const origin_part& part : it->second.parts)
    if (part.executor != to)
      moving.push_back(part);
  if (moving.empty())
    return {409, "request " + std::to_string(request_id) + " already runs on " + to};
  const bool kv = d.kv_enabled();
  for (const origin_part& part : moving) {
    if (!d.origins.count(request_id))
      break;
    if (kv && part.executor == d.cfg.name) { // export first, then cancel and resume (node_kv.cpp)
      d.export_and_migrate_locked(request_id, part, to);
      continue;
    }
    auto peer = d.peers.find(part.executor);
    if (kv && peer != d.peers.end() && peer->second.handle) {
      // The executing peer exports, then answers with a migrate naming the transfer.
      migrate_msg m{request_id, part.attempt};
      m.to = to;
      origin_req& o = d.origins.at(request_id);
      if (!o.pause_pending) {
        o.pause_pending = true;
        o.loss_at = engine_clock::now();
      }
      caf::anon_send(d.node, kv_migrate_atom_v, peer->second.handle, encode(m));
      continue;
    }
    d.cancel_part(request_id, part);
    d.resume(request_id, part.attempt, part.executor, true, to);
  }
  const int32_t moved = int32_t(moving.size());
  return {200, "moved " + std::to_string(moved) + " placement(s) of request " + std::to_string(request_id), moved};
}

migrate_result cluster_node::migrate_all(const std::string& to) {
  impl& d = *impl_;
  int32_t count = 0;
  {
    std::lock_guard lock(d.mu);
    if (!to.empty() && (to == d.cfg.name || !d.live_target(to)))
      return {404, "no live peer named '" + to + "' that takes requests"};
    count = int32_t(d.execs.size());
    for (const auto& [id, o] : d.origins)
      for (const origin_part& part : o.parts)
        count += part.executor == d.cfg.name ? 1 : 0;
  }
  if (count == 0)
    return {409, "nothing runs on " + d.cfg.name};
  caf::anon_send(d.node, admin_atom_v, to); // the node actor sends the migrate messages
  return {200, "moving " + std::to_string(count) + " placement(s) off " + d.cfg.name, count};
}

std::vector<request_info> cluster_node::requests() const {
  std::lock_guard lock(impl_->mu);
  std::vector<request_info> out;
  for (const auto& [id, o] : impl_->origins) {
    request_info r{id, o.original.n, {}, o.completion_tokens()};
    for (const origin_part& part : o.parts)
      r.executors.push_back(part.executor);
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(), [](const request_info& a, const request_info& b) { return a.id < b.id; });
  return out;
}

std::vector<std::string> cluster_node::live_nodes() const {
  std::lock_guard lock(impl_->mu);
  return live_nodes_locked(*impl_);
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
        for (const origin_part& part : o.parts)
          local = local || part.executor == d.cfg.name;
      // Exports wait for their fetch (or expire), so the next node can still import them.
      if (d.execs.empty() && !local && d.kv_exports.pending() == 0)
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
  cluster_counters c = impl_->counters;
  c.malformed_messages = impl_->malformed.load(std::memory_order_relaxed);
  return c;
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
  line("cluster_kv_exports_total", "counter", "Sequences whose KV blocks were exported here for a migration.",
       double(c.kv_exports));
  line("cluster_kv_imports_total", "counter", "Migrations resumed here from shipped KV blocks.", double(c.kv_imports));
  line("cluster_kv_fallbacks_total", "counter",
       "KV transfers refused, corrupt or failed here: resumed by recomputation instead.", double(c.kv_fallbacks));
  line("cluster_kv_bytes_total", "counter", "KV payload bytes imported here.", double(c.kv_bytes));
  return out;
}

} // namespace actorserve::cluster

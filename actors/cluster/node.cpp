#include "actors/cluster/node.hpp"

#include "actors/cluster/node_impl.hpp"
#include "actors/cluster/kv_migration.hpp"
#include "actors/cluster/tls_caf.hpp"

#include <spdlog/spdlog.h>

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
    std::lock_guard lock(mu);
    ++counters.malformed_messages;
    spdlog::warn("cluster: dropped a message of an unexpected type");
    return caf::sec::unexpected_message;
  });
  self->delayed_send(self, cfg.report_interval, tick_atom_v);
  return {
      [=, this](tick_atom) { on_tick(self, connecting); },
      [=, this](hello_atom, const std::string& blob) -> std::string { return on_hello(self, blob); },
      [=, this](load_atom, const std::string& blob) { on_load(self, blob); },
      [=, this](forward_atom, const std::string& blob) -> std::string { return on_forward(self, blob); },
      [=, this](relay_atom, const caf::actor& origin, const std::string& blob) { self->send(origin, output_atom_v, blob); },
      [=, this](output_atom, const std::string& blob) { on_output_msg(self, blob); },
      [=, this](place_atom, const std::string& peer, const std::string& blob, uint64_t id, uint32_t attempt) {
        on_place(self, peer, blob, id, attempt);
      },
      [=, this](migrate_atom, const std::string& blob) { on_migrate(self, blob); },
      [=, this](cancel_atom, const std::string& blob) { on_cancel_msg(self, blob); },
      [=, this](drain_atom) { on_drain(self); },
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
  configure_tls(*p->sys_cfg, p->cfg.tls); // caf_openssl: peers must present a certificate of the CA
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

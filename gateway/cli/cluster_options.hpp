#pragma once
// The `serve` flags of the cluster (actors/cluster/node.hpp), kept apart from cmd_serve.cpp.

#include "actors/cluster/node.hpp"
#include "gateway/serve_app.hpp"

#include <CLI/CLI.hpp>

#include <memory>
#include <unistd.h>

namespace actorserve::cli {

struct cluster_flags {
  int port = -1;
  std::string peers;
  std::string policy = "least-load";
  std::string dns;
  int32_t size = 0;
  std::string name;
  uint64_t incarnation = 0;
  uint32_t protocol_version = 0;
  std::string port_file;
  std::string migration_method = "kv";
  size_t kv_chunk_bytes = cluster::default_kv_chunk_bytes;
  std::string tls_cert, tls_key, tls_ca;
};

inline void add_cluster_options(CLI::App& app, const std::shared_ptr<cluster_flags>& f) {
  app.add_option("--cluster-port", f->port, "listen for cluster peers on this port (0: any free port); turns the "
                                            "cluster on")->check(CLI::Range(0, 65535));
  app.add_option("--cluster-peers", f->peers, "the other nodes, host:port,... (this node's own entry may be listed)");
  app.add_option("--cluster-dns", f->dns, "headless Service name: peers are <statefulset>-<i>.NAME:<cluster-port>");
  app.add_option("--cluster-size", f->size, "number of StatefulSet pods with --cluster-dns")->check(CLI::NonNegativeNumber);
  app.add_option("--cluster-policy", f->policy, "where requests go: least-load, prefix-affinity, round-robin")
      ->capture_default_str()->check(CLI::IsMember({"least-load", "prefix-affinity", "round-robin"}));
  app.add_option("--cluster-name", f->name, "this node's stable name (default: hostname:cluster-port)");
  app.add_option("--cluster-incarnation", f->incarnation, "this start's incarnation (default: microseconds since the "
                                                          "epoch); testing")->group("");
  app.add_option("--cluster-protocol-version", f->protocol_version, "speak another protocol version; testing")->group("");
  app.add_option("--migration-method", f->migration_method,
                 "how a running sequence moves to another node: kv (ship its KV blocks; falls back to recompute "
                 "on any failure) or recompute (prefill prompt + output again)")
      ->check(CLI::IsMember({"kv", "recompute"}))
      ->capture_default_str();
  app.add_option("--cluster-kv-chunk-bytes", f->kv_chunk_bytes, "KV transfer chunk size in bytes")
      ->check(CLI::Range(size_t(4096), size_t(16) << 20))
      ->capture_default_str();
  app.add_option("--cluster-tls-cert", f->tls_cert, "PEM certificate of this node: TLS between nodes (with the key "
                                                     "and the CA; peers must present a certificate of that CA)");
  app.add_option("--cluster-tls-key", f->tls_key, "PEM private key of --cluster-tls-cert");
  app.add_option("--cluster-tls-ca", f->tls_ca, "PEM CA certificate the peers' certificates must be signed by");
  app.add_option("--cluster-port-file", f->port_file, "write the bound cluster port here (scripts, tests)");
}

/// Applies the flags to the serve configuration (throws std::runtime_error on bad combinations).
inline void apply_cluster_options(const cluster_flags& f, gateway::serve_config& c) {
  c.cluster_enabled = f.port >= 0 || !f.peers.empty() || !f.dns.empty();
  if (!c.cluster_enabled)
    return;
  cluster::cluster_config& k = c.cluster;
  k.port = uint16_t(f.port < 0 ? 7070 : f.port);
  k.policy = *cluster::parse_route_policy(f.policy);
  k.name = f.name;
  k.incarnation = f.incarnation;
  k.protocol_version = f.protocol_version;
  c.cluster_port_file = f.port_file;
  k.migration = *cluster::parse_migration_method(f.migration_method);
  k.kv_chunk_bytes = f.kv_chunk_bytes;
  k.tls = {f.tls_cert, f.tls_key, f.tls_ca};
  cluster::validate_tls(k.tls);
  for (size_t start = 0; start < f.peers.size();) {
    size_t end = f.peers.find(',', start);
    if (end == std::string::npos)
      end = f.peers.size();
    if (end > start)
      k.peers.push_back(f.peers.substr(start, end - start));
    start = end + 1;
  }
  if (!f.dns.empty()) {
    if (f.size <= 0)
      throw std::runtime_error("--cluster-dns needs --cluster-size N");
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    const auto peers = cluster::dns_peers(host, f.dns, f.size, k.port);
    k.peers.insert(k.peers.end(), peers.begin(), peers.end());
    if (k.name.empty())
      k.name = std::string(host) + "." + f.dns + ":" + std::to_string(k.port);
  }
}

} // namespace actorserve::cli

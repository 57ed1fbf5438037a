#pragma once
// A cluster node: the local engine plus a CAF node actor that speaks to the other nodes over
// the middleman (see ARCHITECTURE.md, "Cluster"). No CAF types here.
//
// The gateway submits every request through `submit` instead of the engine: the router
// places it on a node (this one or a peer) and the output events come back to the caller's
// sink in order, whichever node produces them. When the executing node dies, freezes, or
// drains, the request is resumed on another node from the tokens the client has already
// received (prompt + those tokens, recomputed), so the stream continues without gaps or
// duplicates.

#include "actors/cluster/kv_transfer.hpp"
#include "actors/cluster/router_policy.hpp"
#include "actors/cluster/tls.hpp"
#include "actors/engine.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace actorserve::cluster {

struct cluster_config {
  std::string host = "0.0.0.0";   // listen address for peers
  uint16_t port = 0;              // cluster port (0: any free one, see cluster_node::port)
  std::vector<std::string> peers; // host:port of the other nodes (this node's own entry is skipped)
  std::string dns_name;           // headless Service: peers are <statefulset>-<i>.<dns_name>:<port>
  int32_t dns_size = 0;           // ... for i in [0, dns_size)
  std::string name;               // stable node name; default: hostname:port
  uint64_t incarnation = 0;       // 0: microseconds since the epoch at start (grows per restart)
  uint32_t protocol_version = 0;  // 0: the built-in one (tests set others)
  route_policy policy = route_policy::least_load;
  int32_t capacity = 256;         // sequences this node runs at once (max_num_seqs), for load scores
  int32_t block_size = 16;        // for prefix hashes
  int32_t affinity_blocks = 8;    // leading prompt blocks hashed for prefix affinity
  std::chrono::milliseconds report_interval{250}; // load reports to every peer
  std::chrono::milliseconds suspect_after{2000};  // silence before a peer counts as dead
  std::chrono::milliseconds forward_timeout{5000};
  // Migration (drain, admin call): ship the sequence's KV blocks, or recompute prompt + output.
  // kv falls back to recompute when the export, the transfer or the import fails.
  migration_method migration = migration_method::kv;
  size_t kv_chunk_bytes = default_kv_chunk_bytes;   // bounded chunks of a KV transfer
  std::chrono::milliseconds kv_fetch_timeout{5000}; // per chunk request
  std::chrono::milliseconds kv_budget{30000};       // a whole transfer; then recompute
  std::string model_id;           // kv_model_id(served name, config.json): peers with another refuse payloads
  cluster_tls tls;                // certificate, key, CA: TLS between nodes when set
};

/// Expands --cluster-dns/--cluster-size into peer addresses, from this host's name
/// (<statefulset>-<ordinal>); throws std::runtime_error when the hostname has no ordinal.
std::vector<std::string> dns_peers(const std::string& hostname, const std::string& dns_name, int32_t size,
                                   uint16_t port);

struct cluster_counters {
  int64_t routed_local = 0;    // placed on this node
  int64_t routed_remote = 0;   // placed on a peer
  int64_t affinity_hits = 0;   // placed on a node that had served the prompt's prefix
  int64_t executed_for_peers = 0;
  int64_t migrated = 0;        // moved off a draining node (or by admin call)
  int64_t failed_over = 0;     // resumed after their node died or froze
  int64_t failover_errors = 0; // could not be resumed anywhere (ended with an error event)
  int64_t peers_lost = 0;
  int64_t handshakes_refused = 0;
  int64_t malformed_messages = 0;
  int32_t peers_alive = 0;
  double last_detect_s = 0;       // silence of the last peer declared dead (frozen peers), or 0 for a lost connection
  double last_failover_pause_s = 0; // last event before the loss -> first event after the resume
  double migrate_seconds_total = 0; // migrate decision -> first event on the new node, summed
  int64_t migrated_tokens_total = 0; // prompt + output tokens recomputed by migrations/failovers
  int64_t kv_exports = 0;   // sequences exported here for a migration
  int64_t kv_imports = 0;   // migrations resumed here from shipped KV blocks
  int64_t kv_fallbacks = 0; // KV transfers refused or failed: resumed by recomputation
  int64_t kv_bytes = 0;     // KV payload bytes imported here
};

/// Answer to an admin migration: `status` is an HTTP status (200, 404 unknown request or node,
/// 409 nothing to move), `message` says why.
struct migrate_result {
  int status = 200;
  std::string message;
  int32_t moved = 0; // placements moved (one per running choice group)
};

struct request_info {
  uint64_t id = 0;
  int32_t n = 1;
  std::vector<std::string> executors; // node of each live placement
  int32_t tokens_delivered = 0;       // summed over choices
};

class cluster_node {
public:
  /// Starts listening on the cluster port and connecting to the peers. `local` must outlive
  /// the node. Throws std::runtime_error if the port cannot be bound.
  static std::unique_ptr<cluster_node> start(cluster_config config, engine& local);
  ~cluster_node();

  /// Places a request (never blocks on the network): a placement on this node answers like
  /// engine::submit; a placement on a peer answers success and reports failures as a final
  /// error event.
  submit_result submit(generate_request request, output_sink sink);
  void cancel(uint64_t request_id);
  /// Admin migration of request `request_id` (an id this node's `submit` returned) to node `to`
  /// (empty: wherever the router places it, never where it runs now), by recomputation: each
  /// choice continues from the tokens its client has received. Never blocks on the network.
  migrate_result migrate(uint64_t request_id, const std::string& to);
  /// Moves everything running on this node elsewhere (to `to` when given): our own clients'
  /// requests here, and those run here for peers (their origins re-place them).
  migrate_result migrate_all(const std::string& to);
  /// The requests accepted by this node and not finished.
  std::vector<request_info> requests() const;
  /// Names of this node and its live peers.
  std::vector<std::string> live_nodes() const;
  /// Stops taking requests from peers, moves the sequences running here elsewhere, and waits
  /// up to `timeout` until none runs here. True if all moved or finished.
  bool drain(std::chrono::milliseconds timeout);

  uint16_t port() const;
  const std::string& name() const;
  cluster_counters counters() const;
  /// Prometheus text lines (actorserve:cluster_*), labelled with the model name.
  std::string metrics_text(const std::string& model_name) const;

  struct impl;

private:
  explicit cluster_node(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace actorserve::cluster

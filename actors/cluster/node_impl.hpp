#pragma once
// Private to actors/cluster: the state of a cluster node shared by its parts.
//   node.cpp            the public side (start, submit, cancel, drain, metrics) and the actor's
//                       handler table;
//   node_membership.cpp handshake, load reports/heartbeats, connecting, losing peers;
//   node_routing.cpp    placing requests, forwarding them to peers, relaying their events back;
//   node_failover.cpp   failover, migration and drain;
//   node_kv.cpp         migration by KV shipping (export, fetch, import; recompute fallback).
// Everything in `impl` below `mu` is guarded by it; the handlers run on the node actor.

#include "actors/cluster/kv_migration.hpp"
#include "actors/cluster/node.hpp"
#include "actors/cluster/node_protocol.hpp"
#include "actors/cluster/wire.hpp"

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace actorserve::cluster {

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

/// One placement of some of a request's choices: the whole request at first; after a failover
/// or migration of an n > 1 request, one placement per unfinished choice (n = 1, seed + choice,
/// that choice's delivered tokens as resume_output_token_ids), so each choice resumes on its own.
struct origin_part {
  std::vector<int32_t> choices; // the original choice index of each choice of the placed request
  uint32_t attempt = 0;         // unique within the request: events and cancels name it
  std::string executor;         // node name (this node's own name when local)
  uint64_t local_id = 0;        // engine id when local
  bool kv = false;              // its forward carries a KV transfer (the peer fetches first)
};

struct origin_req {
  generate_request original;    // seed resolved at submit, so a resumed choice continues its stream
  output_sink sink;             // called with `mu` held: one call at a time, in order
  std::vector<std::vector<int32_t>> received; // per choice: the tokens the client has been given
  std::vector<bool> choice_done;              // per choice: its finish has been delivered
  std::vector<origin_part> parts;             // live placements
  uint32_t attempts = 0;                      // placements so far
  clock_type::time_point last_event{};
  clock_type::time_point loss_at{}; // pause measurement after a failover/migration
  bool pause_pending = false;
  bool migration = false;
  size_t resumed_tokens = 0;
  kv_source kv_from;            // the next placement fetches this KV transfer first (migration)

  origin_part* part(uint32_t attempt) {
    for (auto& p : parts)
      if (p.attempt == attempt)
        return &p;
    return nullptr;
  }
  /// An abort delta for every choice not finished yet (the request ends with an error).
  void abort_unfinished(std::vector<choice_delta>& out) const {
    for (int32_t c = 0; c < int32_t(choice_done.size()); ++c)
      if (!choice_done[size_t(c)]) {
        choice_delta d;
        d.index = c;
        d.finish = finish_reason::abort;
        out.push_back(std::move(d));
      }
  }
  int32_t completion_tokens() const {
    int32_t n = 0;
    for (const auto& r : received)
      n += int32_t(r.size());
    return n;
  }
};

struct exec_req {
  caf::actor origin;
  uint64_t origin_id = 0;
  uint32_t attempt = 0;
};

/// "host:port" -> (host, port); throws std::runtime_error.
std::pair<std::string, uint16_t> split_addr(const std::string& addr);

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
  std::map<std::string, int32_t> connect_failures;         // consecutive failed connects per address
  router_policy router;
  cluster_counters counters; // under mu, except malformed_messages (the atomic below)
  // Cross-node messages refused as malformed: counted with and without `mu` held (handlers decode
  // before or after locking), reported by cluster_node::counters().
  std::atomic<int64_t> malformed{0};

  /// Decodes a peer's message into `m`; a malformed one is counted and its problem returned
  /// (nullopt: `m` holds the message).
  template <class Msg>
  std::optional<std::string> decode_or_count(const std::string& blob, Msg& m) {
    try {
      decode(blob, m);
      return std::nullopt;
    } catch (const wire_error& e) {
      malformed.fetch_add(1, std::memory_order_relaxed);
      return std::string(e.what());
    }
  }
  kv_export_store kv_exports; // exports waiting to be fetched (thread-safe itself)
  struct kv_local_placement {
    generate_request req;
    kv_source src;
  };
  std::map<std::pair<uint64_t, uint32_t>, kv_local_placement> kv_local_pending; // (id, attempt): fetching

  uint32_t my_version() const { return cfg.protocol_version ? cfg.protocol_version : protocol_version; }
  std::atomic<uint64_t> next_id{1};
  std::atomic<bool> draining{false};
  std::atomic<uint64_t> seed_state{0}; // random start (set in start), then splitmix64 steps
  uint64_t draw_seed() {
    uint64_t x = seed_state.fetch_add(0x9e3779b97f4a7c15ull) + 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  }

  impl(cluster_config c, engine& e) : cfg(std::move(c)), eng(e), router(cfg.policy) {}

  // ---- routing (node_routing.cpp), `mu` held ----
  void note_prefixes(const std::vector<uint64_t>& hashes);
  /// Ends a request with an error event (cancelling its live placements) and forgets it.
  void fail(uint64_t id, origin_req& o, engine_errc err, const std::string& why);
  /// The request that places `part`: the original, or one choice resumed from its tokens.
  generate_request part_request(const origin_req& o, const origin_part& part) const;
  /// Places `part` of request `id` on a node (`to`: that node, else the router's pick, never one
  /// in `exclude`); false when it could not: with `result` set on the first placement, else the
  /// request has been failed (and erased).
  bool place(uint64_t id, origin_part part, const std::vector<std::string>& exclude, const std::string& to,
             submit_result* result);
  void cancel_part(uint64_t id, const origin_part& part);
  // ---- routing, takes `mu` itself ----
  void on_output(uint64_t id, uint32_t attempt, request_output&& out, bool* stale);
  // ---- failover (node_failover.cpp), `mu` held ----
  /// Moves placement `attempt` of request `id` off node `lost` (to `to` when given).
  void resume(uint64_t id, uint32_t attempt, const std::string& lost, bool migration, const std::string& to = {});
  void release_outstanding(const origin_part& part);
  /// Admin migration of everything running here (own clients' requests and peers'), from the
  /// node actor (the migrate messages to origins must come from it).
  void migrate_all_running(caf::event_based_actor* self, const std::string& to);
  // ---- KV shipping (node_kv.cpp) ----
  bool kv_enabled() const;
  /// The KV transfer the next placement of `o` uses (taken), or none (`mu` held).
  kv_source take_kv_source(origin_req& o, const origin_part& part);
  /// Exports local engine request `engine_id`'s K/V into kv_exports; `then` gets the transfer id
  /// (0: none, recompute) on an engine thread and may only post to the node actor.
  void export_for_migration(uint64_t engine_id, std::function<void(uint64_t transfer_id)> then);
  /// Migrates a local placement after exporting its K/V (`mu` held; finishes in on_kv_resume).
  void export_and_migrate_locked(uint64_t id, const origin_part& part, const std::string& to);
  /// place() on this node with a KV transfer to fetch first (`mu` held).
  bool place_local_with_kv(uint64_t id, origin_part part, generate_request req, kv_source src);
  /// Fetches `src` from its node, then `then` with the snapshot or null (recompute); logs and counts.
  void fetch_for(caf::event_based_actor* self, const kv_source& src, uint64_t id,
                 std::function<void(std::shared_ptr<const kv_snapshot>)> then);
  std::string on_kv_fetch(caf::event_based_actor* self, const std::string& blob);
  caf::result<std::string> on_forward_kv(caf::event_based_actor* self, caf::actor origin, forward_msg m);
  void on_kv_local(caf::event_based_actor* self, uint64_t id, uint32_t attempt);
  void on_kv_resume(uint64_t id, uint32_t attempt, const std::string& to, uint64_t transfer_id);
  void on_kv_migrate(caf::event_based_actor* self, const std::string& blob);
  /// The forward path after decoding (node_routing.cpp), `mu` not held.
  std::string submit_forwarded(caf::event_based_actor* self, const caf::actor& origin, forward_msg m);
  // ---- membership (node_membership.cpp), `mu` held ----
  void peer_lost(peer_state& p, const std::string& why);
  peer_state* peer_by_addr(const caf::actor_addr& a);
  void note_connect_failure(const std::string& addr, const caf::error& err); // logs a lasting failure
  load_msg own_load();

  // ---- the node actor (node.cpp lists the handlers; each takes `mu` as needed) ----
  caf::behavior behave(caf::event_based_actor* self);
  void on_down(const caf::down_msg& dm);
  void add_peer(caf::event_based_actor* self, const std::string& name, uint64_t incarnation, caf::actor handle);
  void on_tick(caf::event_based_actor* self, const std::shared_ptr<std::set<std::string>>& connecting);
  std::string on_hello(caf::event_based_actor* self, const std::string& blob);
  void on_load(caf::event_based_actor* self, const std::string& blob);
  caf::result<std::string> on_forward(caf::event_based_actor* self, const std::string& blob);
  void on_output_msg(caf::event_based_actor* self, const std::string& blob);
  void on_place(caf::event_based_actor* self, const std::string& peer, const std::string& blob, uint64_t id,
                uint32_t attempt);
  void on_cancel_msg(caf::event_based_actor* self, const std::string& blob);
  void on_migrate(caf::event_based_actor* self, const std::string& blob);
  void on_drain(caf::event_based_actor* self);
  /// Whether `name` is a node that can take requests now (this one, or a live peer), `mu` held.
  bool live_target(const std::string& name) const;
};

} // namespace actorserve::cluster

#pragma once
// Where a request goes in the cluster: pure logic, no CAF, unit-tested on its own.
//
// Each node's view is what its last load report said (running, waiting, KV usage, capacity,
// prefix-block hashes it has served) plus what this router has sent it and not yet seen
// finish, so a burst of requests between two reports does not all land on one node.
// Policies:
//   least-load       the lowest estimated load per unit of capacity (ties: fewest outstanding,
//                    then name order, so the choice is deterministic)
//   prefix-affinity  the node that already served the longest chain of the prompt's leading
//                    block hashes, unless it is much busier than the least-loaded node
//   round-robin      eligible nodes in turn
// Dead, suspected, draining and excluded nodes are never chosen.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

namespace actorserve::cluster {

enum class route_policy { least_load, prefix_affinity, round_robin };
/// Parses "least-load", "prefix-affinity", "round-robin"; nullopt otherwise.
std::optional<route_policy> parse_route_policy(const std::string& name);
const char* to_string(route_policy p);

/// Chained 64-bit hashes of the prompt's first full blocks: hash i covers tokens
/// [0, (i+1)*block_size), so equal hashes mean equal prefixes. At most `max_blocks`.
std::vector<uint64_t> prefix_block_hashes(std::span<const int32_t> prompt, int32_t block_size, int32_t max_blocks);

struct node_view {
  std::string name;
  bool alive = true;     // connected, handshake done, heard from recently
  bool draining = false; // takes no new requests
  int32_t running = 0;   // as last reported
  int32_t waiting = 0;
  double kv_usage = 0;   // [0, 1]
  int32_t capacity = 1;  // max running sequences (max_num_seqs), > 0
  int32_t outstanding = 0; // routed here by this router and not finished
  const std::unordered_set<uint64_t>* prefixes = nullptr; // hashes this node has served
};

struct route_decision {
  size_t node = 0;          // index into the views
  int32_t matched_blocks = 0; // leading prompt blocks the chosen node has served
  bool affinity = false;    // chosen for its prefix (not for its load)
};

class router_policy {
public:
  explicit router_policy(route_policy policy = route_policy::least_load) : policy_(policy) {}
  route_policy policy() const { return policy_; }
  /// Picks a node for a prompt with these leading block hashes; nullopt when none is eligible.
  std::optional<route_decision> pick(const std::vector<node_view>& nodes, std::span<const uint64_t> prompt_hashes,
                                     const std::vector<std::string>& exclude = {});
  /// Estimated load of a node as a fraction of its capacity (waiting counts fully; KV usage
  /// above 90% adds a penalty so a node about to preempt is avoided).
  static double load_score(const node_view& n);

private:
  route_policy policy_;
  uint64_t next_ = 0; // round-robin position
};

} // namespace actorserve::cluster

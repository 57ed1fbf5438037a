#include "actors/cluster/router_policy.hpp"

#include <xxhash.h>

#include <algorithm>

namespace actorserve::cluster {

std::optional<route_policy> parse_route_policy(const std::string& name) {
  if (name == "least-load")
    return route_policy::least_load;
  if (name == "prefix-affinity")
    return route_policy::prefix_affinity;
  if (name == "round-robin")
    return route_policy::round_robin;
  return std::nullopt;
}

const char* to_string(route_policy p) {
  switch (p) {
  case route_policy::least_load: return "least-load";
  case route_policy::prefix_affinity: return "prefix-affinity";
  case route_policy::round_robin: return "round-robin";
  }
  return "?";
}

std::vector<uint64_t> prefix_block_hashes(std::span<const int32_t> prompt, int32_t block_size, int32_t max_blocks) {
  std::vector<uint64_t> hashes;
  if (block_size <= 0)
    return hashes;
  uint64_t chain = 0x9e3779b97f4a7c15ull;
  for (size_t start = 0; start + size_t(block_size) <= prompt.size() && int32_t(hashes.size()) < max_blocks;
       start += size_t(block_size)) {
    chain = XXH3_64bits_withSeed(prompt.data() + start, sizeof(int32_t) * size_t(block_size), chain);
    hashes.push_back(chain);
  }
  return hashes;
}

double router_policy::load_score(const node_view& n) {
  const int32_t load = std::max(n.running + n.waiting, n.outstanding);
  double score = double(load) / double(std::max(n.capacity, 1));
  if (n.kv_usage > 0.9)
    score += (n.kv_usage - 0.9) * 10.0; // up to +1 at a full cache
  return score;
}

namespace {

bool eligible(const node_view& n, const std::vector<std::string>& exclude) {
  return n.alive && !n.draining && std::find(exclude.begin(), exclude.end(), n.name) == exclude.end();
}

int32_t matched(const node_view& n, std::span<const uint64_t> hashes) {
  if (!n.prefixes)
    return 0;
  // Hashes are chained: the longest served prefix is the last hash found, scanning from the end.
  for (size_t i = hashes.size(); i > 0; --i)
    if (n.prefixes->count(hashes[i - 1]))
      return int32_t(i);
  return 0;
}

} // namespace

std::optional<route_decision> router_policy::pick(const std::vector<node_view>& nodes,
                                                  std::span<const uint64_t> prompt_hashes,
                                                  const std::vector<std::string>& exclude) {
  std::vector<size_t> candidates;
  for (size_t i = 0; i < nodes.size(); ++i)
    if (eligible(nodes[i], exclude))
      candidates.push_back(i);
  if (candidates.empty())
    return std::nullopt;
  std::sort(candidates.begin(), candidates.end(), [&](size_t a, size_t b) { return nodes[a].name < nodes[b].name; });

  if (policy_ == route_policy::round_robin)
    return route_decision{candidates[next_++ % candidates.size()], 0, false};

  size_t least = candidates.front();
  for (size_t i : candidates) {
    const double si = load_score(nodes[i]), sl = load_score(nodes[least]);
    if (si < sl || (si == sl && nodes[i].outstanding < nodes[least].outstanding))
      least = i;
  }
  route_decision d{least, matched(nodes[least], prompt_hashes), false};
  if (policy_ != route_policy::prefix_affinity || prompt_hashes.empty())
    return d;

  size_t best = least;
  int32_t best_match = d.matched_blocks;
  for (size_t i : candidates) {
    const int32_t m = matched(nodes[i], prompt_hashes);
    if (m > best_match || (m == best_match && m > 0 && load_score(nodes[i]) < load_score(nodes[best]))) {
      best = i;
      best_match = m;
    }
  }
  // A cached prefix saves its prefill, but not a long queue: beyond half the capacity more
  // load than the least-loaded node, load wins.
  if (best_match > 0 && load_score(nodes[best]) <= load_score(nodes[least]) + 0.5)
    return route_decision{best, best_match, best != least || best_match > 0};
  return d;
}

} // namespace actorserve::cluster

// The router's placement rules, as pure logic.
#include "actors/cluster/router_policy.hpp"

#include <catch2/catch.hpp>

#include <map>

using namespace actorserve::cluster;

namespace {
std::vector<node_view> three_nodes() {
  std::vector<node_view> v(3);
  v[0].name = "a", v[1].name = "b", v[2].name = "c";
  for (auto& n : v)
    n.capacity = 8;
  return v;
}
} // namespace

TEST_CASE("policy names parse and print", "[cluster][router]") {
  CHECK(parse_route_policy("least-load") == route_policy::least_load);
  CHECK(parse_route_policy("prefix-affinity") == route_policy::prefix_affinity);
  CHECK(parse_route_policy("round-robin") == route_policy::round_robin);
  CHECK_FALSE(parse_route_policy("random").has_value());
  CHECK(std::string(to_string(route_policy::prefix_affinity)) == "prefix-affinity");
}

TEST_CASE("prefix hashes are chained over full blocks only", "[cluster][router]") {
  std::vector<int32_t> a(40), b(40);
  for (int i = 0; i < 40; ++i)
    a[size_t(i)] = b[size_t(i)] = i;
  b[20] = 999; // differs in the second block
  const auto ha = prefix_block_hashes(a, 16, 8), hb = prefix_block_hashes(b, 16, 8);
  REQUIRE(ha.size() == 2); // 40 tokens: two full blocks of 16
  REQUIRE(hb.size() == 2);
  CHECK(ha[0] == hb[0]);
  CHECK(ha[1] != hb[1]);
  CHECK(prefix_block_hashes(a, 16, 1).size() == 1);
  CHECK(prefix_block_hashes(std::vector<int32_t>(15, 1), 16, 8).empty());
  // Chaining: the same second block after a different first block hashes differently.
  std::vector<int32_t> c = a;
  c[0] = 7;
  CHECK(prefix_block_hashes(c, 16, 8)[1] != ha[1]);
}

TEST_CASE("least-load picks the emptiest node, counting outstanding requests", "[cluster][router]") {
  auto v = three_nodes();
  v[0].running = 5, v[1].running = 2, v[2].running = 3;
  router_policy r(route_policy::least_load);
  CHECK(r.pick(v, {})->node == 1);
  v[1].outstanding = 6; // sent there since its last report
  CHECK(r.pick(v, {})->node == 2);
  // Capacity matters: 4 of 32 is less loaded than 3 of 8.
  v[0].capacity = 32, v[0].running = 4;
  CHECK(r.pick(v, {})->node == 0);
  // A nearly full KV cache is avoided.
  v[0].kv_usage = 0.99;
  CHECK(r.pick(v, {})->node == 2);
}

TEST_CASE("dead, draining and excluded nodes are never chosen", "[cluster][router]") {
  auto v = three_nodes();
  v[0].alive = false;
  v[1].draining = true;
  router_policy r(route_policy::least_load);
  for (int i = 0; i < 5; ++i)
    CHECK(r.pick(v, {})->node == 2);
  CHECK_FALSE(r.pick(v, {}, {"c"}).has_value());
  router_policy rr(route_policy::round_robin);
  CHECK(rr.pick(v, {})->node == 2);
}

TEST_CASE("round-robin cycles over eligible nodes", "[cluster][router]") {
  auto v = three_nodes();
  router_policy r(route_policy::round_robin);
  std::map<size_t, int> count;
  for (int i = 0; i < 30; ++i)
    ++count[r.pick(v, {})->node];
  CHECK(count[0] == 10);
  CHECK(count[1] == 10);
  CHECK(count[2] == 10);
}

TEST_CASE("prefix-affinity follows the longest served prefix unless that node is much busier", "[cluster][router]") {
  auto v = three_nodes();
  std::vector<int32_t> prompt(64);
  for (int i = 0; i < 64; ++i)
    prompt[size_t(i)] = i * 3;
  const auto h = prefix_block_hashes(prompt, 16, 8);
  REQUIRE(h.size() == 4);
  std::unordered_set<uint64_t> b_has{h[0], h[1]}, c_has{h[0]};
  v[1].prefixes = &b_has;
  v[2].prefixes = &c_has;
  v[1].running = 2; // a is least loaded, b has the longest prefix
  router_policy r(route_policy::prefix_affinity);
  auto d = r.pick(v, h);
  REQUIRE(d);
  CHECK(d->node == 1);
  CHECK(d->affinity);
  CHECK(d->matched_blocks == 2);
  // b is now more than half its capacity busier than a: load wins.
  v[1].running = 7;
  d = r.pick(v, h);
  CHECK(d->node == 0);
  CHECK_FALSE(d->affinity);
  // No prefix known anywhere: least-load.
  v[1].running = 0;
  v[1].prefixes = v[2].prefixes = nullptr;
  v[0].running = 3;
  CHECK(r.pick(v, h)->node == 1);
  // least-load ignores prefixes.
  v[2].prefixes = &c_has;
  router_policy ll(route_policy::least_load);
  CHECK(ll.pick(v, h)->node == 1);
}

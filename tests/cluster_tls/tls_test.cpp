// TLS between cluster nodes (caf_openssl), across `actorserve serve` processes on loopback:
// two nodes with certificates of one CA (made here with the openssl CLI) form a cluster and
// route requests across; a node with a certificate of another CA, and a node without TLS,
// cannot join (and log why).
#include "tests/cluster/cluster_harness.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>

using namespace actorserve::testing::cluster;

namespace {

bool have_openssl_cli() { return std::system("openssl version > /dev/null 2>&1") == 0; }

void sh(const std::string& cmd) {
  INFO(cmd);
  REQUIRE(std::system((cmd + " > /dev/null 2>&1").c_str()) == 0);
}

const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

/// A self-signed CA `name`.crt/.key in `dir`.
void make_ca(const std::filesystem::path& dir, const std::string& name) {
  sh("openssl req -x509 " + ec + " -days 2 -subj /CN=" + name + " -keyout " + (dir / (name + ".key")).string() +
     " -out " + (dir / (name + ".crt")).string());
}

/// A node certificate `name`.crt/.key signed by CA `ca`.
void make_cert(const std::filesystem::path& dir, const std::string& ca, const std::string& name) {
  const auto p = [&](const std::string& f) { return (dir / f).string(); };
  sh("openssl req " + ec + " -subj /CN=" + name + " -keyout " + p(name + ".key") + " -out " + p(name + ".csr"));
  sh("openssl x509 -req -days 2 -in " + p(name + ".csr") + " -CA " + p(ca + ".crt") + " -CAkey " + p(ca + ".key") +
     " -CAcreateserial -out " + p(name + ".crt"));
}

std::vector<std::string> tls_flags(const std::filesystem::path& dir, const std::string& name, const std::string& ca) {
  return {"--cluster-tls-cert", (dir / (name + ".crt")).string(), "--cluster-tls-key", (dir / (name + ".key")).string(),
          "--cluster-tls-ca", (dir / (ca + ".crt")).string()};
}

} // namespace

TEST_CASE("TLS cluster: nodes of one CA route across, another CA's node and a plain node are refused",
          "[cluster][tls][multiprocess]") {
  if (!have_openssl_cli()) {
    WARN("skipped: the openssl CLI is not installed (the lead adds package openssl to scripts/install-deps.sh)");
    return;
  }
  actorserve::testing::temp_dir dir;
  make_ca(dir.path(), "ca1");
  make_ca(dir.path(), "ca2");
  make_cert(dir.path(), "ca1", "a");
  make_cert(dir.path(), "ca1", "b");
  make_cert(dir.path(), "ca2", "intruder");

  std::vector<std::unique_ptr<node>> nodes;
  std::string peers;
  for (int i = 0; i < 4; ++i) {
    auto x = std::make_unique<node>();
    x->http_port = free_port();
    x->cluster_port = free_port();
    peers += (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(x->cluster_port);
    nodes.push_back(std::move(x));
  }
  nodes[0]->extra = tls_flags(dir.path(), "a", "ca1");
  nodes[1]->extra = tls_flags(dir.path(), "b", "ca1");
  nodes[2]->extra = tls_flags(dir.path(), "intruder", "ca2"); // a certificate of another CA
  nodes[3]->extra = {};                                        // no TLS at all
  for (auto& x : nodes) {
    x->extra.insert(x->extra.end(), {"--cluster-policy", "round-robin"});
    x->start(dir.path(), peers);
  }
  for (auto& x : nodes)
    REQUIRE(x->ready());

  // a and b join each other over TLS.
  const auto end = steady::now() + 20s;
  while (steady::now() < end && (nodes[0]->metric("actorserve:cluster_peers_alive") != 1 ||
                                 nodes[1]->metric("actorserve:cluster_peers_alive") != 1))
    std::this_thread::sleep_for(100ms);
  INFO(nodes[0]->log_text());
  REQUIRE(nodes[0]->metric("actorserve:cluster_peers_alive") == 1);
  REQUIRE(nodes[1]->metric("actorserve:cluster_peers_alive") == 1);

  // Requests through a go round-robin to a and b: routed across the TLS link.
  for (int i = 0; i < 4; ++i) {
    auto r = stream_completion(nodes[0]->http_port, "Hello number " + std::to_string(i), 8);
    CHECK(r.ok);
    CHECK(!r.text.empty());
  }
  CHECK(nodes[0]->metric("actorserve:cluster_routed_remote_total") >= 1);
  CHECK(nodes[1]->metric("actorserve:cluster_executed_for_peers_total") >= 1);

  // The intruder and the plain node never became anyone's peer, and say why.
  std::this_thread::sleep_for(2500ms);
  CHECK(nodes[0]->metric("actorserve:cluster_peers_alive") == 1);
  CHECK(nodes[1]->metric("actorserve:cluster_peers_alive") == 1);
  CHECK(nodes[2]->metric("actorserve:cluster_peers_alive") == 0);
  CHECK(nodes[3]->metric("actorserve:cluster_peers_alive") == 0);
  CHECK_THAT(nodes[2]->log_text(), Catch::Contains("cannot connect to peer"));
  CHECK_THAT(nodes[3]->log_text(), Catch::Contains("cannot connect to peer"));
  CHECK_THAT(nodes[3]->log_text(), Catch::Contains("no TLS"));
}

TEST_CASE("TLS flags: an incomplete set or an unreadable file is refused at start", "[cluster][tls]") {
  actorserve::testing::temp_dir dir;
  node x;
  x.http_port = free_port();
  x.cluster_port = free_port();
  x.extra = {"--cluster-tls-cert", (dir.path() / "missing.crt").string()};
  x.start(dir.path(), "127.0.0.1:1");
  const int status = x.wait_exit();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) != 0);
  CHECK_THAT(x.log_text(), Catch::Contains("--cluster-tls"));
}

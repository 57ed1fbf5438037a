// A node refuses malformed, truncated, unexpected and unauthenticated cross-node payloads
// (answering an error where a reply is expected) and keeps serving.
#include "actors/cluster/node_protocol.hpp"
#include "actors/cluster/wire.hpp"
#include "tests/cluster/cluster_harness.hpp"

#include <catch2/catch.hpp>

using namespace actorserve;
using namespace actorserve::cluster;
using namespace actorserve::testing::cluster;

namespace {

// Sends (atom, blob) and returns the string reply, or "" on error/timeout.
template <class Atom> std::string ask(caf::scoped_actor& self, const caf::actor& dest, Atom atom, const std::string& blob) {
  std::string out;
  self->request(dest, std::chrono::seconds(3), atom, blob)
      .receive([&](const std::string& reply) { out = reply; }, [&](const caf::error&) { out = ""; });
  return out;
}

} // namespace

TEST_CASE("malformed or truncated cross-node payloads are rejected and the node survives", "[cluster][multiprocess]") {
  actorserve::testing::temp_dir dir;
  node a;
  a.http_port = free_port();
  a.cluster_port = free_port();
  a.start(dir.path(), "127.0.0.1:" + std::to_string(a.cluster_port));
  REQUIRE(a.ready());

  // Raw garbage and a truncated BASP header on the cluster port: CAF drops the connection.
  for (const std::string& bytes : {std::string("GET / HTTP/1.1\r\n\r\n"), std::string(13, '\x01'),
                                  std::string(4096, '\xff')}) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(uint16_t(a.cluster_port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    (void)::write(fd, bytes.data(), bytes.size());
    ::close(fd);
  }

  caf::actor_system_config cfg;
  configure_cluster_system(cfg);
  caf::actor_system sys(cfg);
  auto remote = sys.middleman().remote_actor("127.0.0.1", uint16_t(a.cluster_port));
  REQUIRE(remote);
  caf::scoped_actor self(sys);

  // Before a handshake, requests are refused.
  forward_msg f;
  f.origin_id = 1;
  f.request.prompt_token_ids = {1, 2, 3};
  f.request.max_tokens = 4;
  forward_reply_msg r;
  decode(ask(self, *remote, forward_atom_v, encode(f)), r);
  CHECK(r.error == engine_errc::invalid_request);
  CHECK_THAT(r.message, Catch::Contains("not a cluster peer"));

  // A garbage hello is refused with a reason.
  hello_reply_msg hr;
  decode(ask(self, *remote, hello_atom_v, std::string("\x93\x01\x02", 3)), hr);
  CHECK_FALSE(hr.accepted);

  // A proper hello is accepted; then malformed and truncated requests get error answers.
  decode(ask(self, *remote, hello_atom_v, encode(hello_msg{protocol_version, "tester", 1})), hr);
  REQUIRE(hr.accepted);
  const std::string good = encode(f);
  for (const std::string& bad : {std::string("not msgpack at all"), good.substr(0, good.size() / 2),
                                 good.substr(0, good.size() - 1), good + "tail", encode(cancel_msg{1, 1})}) {
    const std::string reply = ask(self, *remote, forward_atom_v, bad);
    REQUIRE_FALSE(reply.empty());
    decode(reply, r);
    CHECK(r.error == engine_errc::invalid_request);
    CHECK_THAT(r.message, Catch::Contains("malformed"));
  }
  // Fire-and-forget messages with garbage, and a message of an unexpected type.
  self->send(*remote, load_atom_v, std::string("\xc1"));
  self->send(*remote, output_atom_v, good.substr(0, 5));
  self->send(*remote, migrate_atom_v, std::string());
  self->send(*remote, actorserve::cluster::cancel_atom_v, std::string("\xff\xff"));
  self->send(*remote, int32_t(42), std::string("unexpected"));
  // A well-formed forwarded request still runs and streams its outputs back to us.
  decode(ask(self, *remote, forward_atom_v, good), r);
  CHECK(r.error == engine_errc::none);
  bool finished = false;
  int events = 0;
  self->receive_while([&] { return !finished; })(
      [&](output_atom, const std::string& blob) {
        output_msg m;
        decode(blob, m);
        ++events;
        finished = m.output.finished;
        CHECK(m.origin_id == 1);
      },
      caf::after(std::chrono::seconds(10)) >> [&] { finished = true; });
  CHECK(events >= 1);

  // The node still serves HTTP and counted what it refused.
  CHECK(stream_completion(a.http_port, "The cat", 4).ok);
  CHECK(a.metric("actorserve:cluster_malformed_messages_total") >= 8);
  CHECK(a.metric("actorserve:cluster_handshakes_refused_total") >= 1);
}

#pragma once
// The CAF side of cluster TLS (actors/cluster/tls.hpp): private to actors/cluster.

#include "actors/cluster/tls.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <cstdint>

namespace actorserve::cluster {

/// Loads the openssl module with the files (after the middleman). No-op when !tls.enabled().
void configure_tls(caf::actor_system_config& cfg, const cluster_tls& tls);
/// The middleman actor that connects to peers: the TLS one when `tls`, else the plain one.
caf::io::middleman_actor peer_connector(caf::actor_system& sys, bool tls);
/// Publishes the node actor on `port` (0: any), over TLS when `tls`.
caf::expected<uint16_t> publish_node(caf::actor_system& sys, const caf::actor& node, uint16_t port,
                                     const char* host, bool tls);

} // namespace actorserve::cluster

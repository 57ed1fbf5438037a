#pragma once
// The node actor's CAF messages: atoms only, each carrying a msgpack document (actors/cluster/
// wire.hpp) as a std::string, so CAF serializes nothing but strings between nodes. The type-ID
// block follows the engine's; register both with `configure_cluster_system`.

#include "actors/engine_actors.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>

CAF_BEGIN_TYPE_ID_BLOCK(actorserve_cluster, caf::id_block::actorserve::end)
  // between nodes: (atom, std::string document)
  CAF_ADD_ATOM(actorserve_cluster, actorserve::cluster, hello_atom, "clhello")
  CAF_ADD_ATOM(actorserve_cluster, actorserve::cluster, load_atom, "clload")
  CAF_ADD_ATOM(actorserve_cluster, actorserve::cluster, forward_atom, "clforward")
  CAF_ADD_ATOM(actorserve_cluster, actorserve::cluster, output_atom, "cloutput")
  CAF_ADD_ATOM(actorserve_cluster, actorserve::cluster, migrate_atom, "clmigrate")
  CAF_ADD_ATOM(actorserve_cluster, actorserve::cluster, cancel_atom, "clcancel")
  // inside one node
  CAF_ADD_ATOM(actorserve_cluster, actorserve::cluster, tick_atom, "cltick")
  CAF_ADD_ATOM(actorserve_cluster, actorserve::cluster, relay_atom, "clrelay")
  CAF_ADD_ATOM(actorserve_cluster, actorserve::cluster, place_atom, "clplace")
  CAF_ADD_ATOM(actorserve_cluster, actorserve::cluster, drain_atom, "cldrain")
  CAF_ADD_ATOM(actorserve_cluster, actorserve::cluster, cancel_to_atom, "clcancelto") // (peer, cancel document)
  CAF_ADD_ATOM(actorserve_cluster, actorserve::cluster, admin_atom, "cladmin")       // migrate all: (target or "")
CAF_END_TYPE_ID_BLOCK(actorserve_cluster)

namespace actorserve::cluster {
/// Message types, middleman, explicit heartbeat (500 ms) and connection timeout (4 s), and the
/// cluster's application identifier (a non-cluster CAF peer cannot connect).
void configure_cluster_system(caf::actor_system_config& cfg);
} // namespace actorserve::cluster

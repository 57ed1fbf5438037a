#pragma once
// Admin calls of a cluster node, on the gateway's HTTP port:
//   GET  /admin/requests  the requests this node accepted and where each placement runs;
//   POST /admin/migrate   {"request_id": N, "to": "node"} moves one request (its running
//                         choices) to that node ("to" omitted: wherever the router places it);
//                         {"all": true[, "to": "node"]} moves everything running on this node.
// Both need the server's API key (Authorization: Bearer KEY); a server started without
// --api-key answers 403 (admin calls are never open), a node without --cluster-port 404.

#include "gateway/http_server.hpp"

#include <atomic>
#include <string>

namespace actorserve::cluster {
class cluster_node;
}

namespace actorserve::gateway {

/// Where the admin routes find the cluster node: set once it has started (routes are
/// installed before the server listens, the node starts after the model is loaded).
struct admin_target {
  std::atomic<cluster::cluster_node*> node{nullptr};
};

/// Registers the admin routes on `server` (call before serve()). `target` must outlive it.
void install_admin_routes(http_server& server, admin_target& target, const std::string& api_key);

} // namespace actorserve::gateway

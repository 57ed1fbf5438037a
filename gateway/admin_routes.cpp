#include "gateway/admin_routes.hpp"

#include "actors/cluster/node.hpp"
#include "gateway/api_error.hpp"
#include "gateway/auth.hpp"

#include <nlohmann/json.hpp>
#include <optional>
#include <spdlog/spdlog.h>

namespace actorserve::gateway {

namespace {

using json = nlohmann::json;
using reply = http_server::json_reply;

reply error(int status, const std::string& message, const std::string& type, const std::string& param = {}) {
  return {status, error_body(api_error(status, message, type, param))};
}

// The API key check shared by the admin routes; nullopt when the call may go on.
std::optional<reply> refused(const std::string& api_key, const std::string& authorization) {
  if (api_key.empty())
    return error(403, "Admin calls are disabled: start the server with --api-key to enable them.",
                 "permission_error");
  if (!bearer_authorized(authorization, api_key))
    return reply{401, error_body(unauthorized_error())};
  return std::nullopt;
}

reply list_requests(cluster::cluster_node& node) {
  json requests = json::array();
  for (const auto& r : node.requests())
    requests.push_back({{"request_id", r.id}, {"n", r.n}, {"running_on", r.executors},
                        {"tokens_delivered", r.tokens_delivered}});
  return {200, json{{"node", node.name()}, {"live_nodes", node.live_nodes()}, {"requests", requests}}.dump()};
}

reply migrate(cluster::cluster_node& node, const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return error(400, "The body must be a JSON object.", "invalid_request_error");
  std::string to;
  if (j.contains("to")) {
    if (!j["to"].is_string() || j["to"].get<std::string>().empty())
      return error(400, "'to' must be a node name (GET /admin/requests lists the live nodes).",
                   "invalid_request_error", "to");
    to = j["to"].get<std::string>();
  }
  const bool all = j.contains("all") && j["all"].is_boolean() && j["all"].get<bool>();
  if (j.contains("all") && !j["all"].is_boolean())
    return error(400, "'all' must be true or false.", "invalid_request_error", "all");
  if (all == j.contains("request_id"))
    return error(400, "Give either 'request_id' or \"all\": true.", "invalid_request_error", "request_id");
  cluster::migrate_result r;
  if (all) {
    r = node.migrate_all(to);
  } else {
    if (!j["request_id"].is_number_unsigned())
      return error(400, "'request_id' must be a request id from GET /admin/requests.", "invalid_request_error",
                   "request_id");
    r = node.migrate(j["request_id"].get<uint64_t>(), to);
  }
  spdlog::info("admin: migrate {} -> {}: {}", all ? std::string("all") : j["request_id"].dump(),
               to.empty() ? std::string("(router)") : to, r.message);
  if (r.status != 200)
    return error(r.status, r.message, r.status == 404 ? "not_found_error" : "invalid_request_error",
                 all ? "to" : (r.status == 404 && r.message.rfind("unknown request", 0) == 0 ? "request_id" : "to"));
  return {200, json{{"moved", r.moved}, {"message", r.message}}.dump()};
}

} // namespace

void install_admin_routes(http_server& server, admin_target& target, const std::string& api_key) {
  auto guarded = [&target, api_key](auto handler) {
    return [&target, api_key, handler](const std::string& authorization, const std::string& body) -> reply {
      if (auto no = refused(api_key, authorization))
        return *no;
      cluster::cluster_node* node = target.node.load();
      if (!node)
        return error(404, "This server is not a cluster node (start it with --cluster-port), or is still loading.",
                     "not_found_error");
      return handler(*node, body);
    };
  };
  server.add_json_route("GET", "/admin/requests",
                        guarded([](cluster::cluster_node& node, const std::string&) { return list_requests(node); }));
  server.add_json_route("POST", "/admin/migrate", guarded(migrate));
}

} // namespace actorserve::gateway

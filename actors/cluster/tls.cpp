#include "actors/cluster/tls_caf.hpp"

#include <fstream>
#include <stdexcept>

#ifdef ACTORSERVE_HAS_CAF_OPENSSL
#include <caf/openssl/manager.hpp>
#include <caf/openssl/publish.hpp>
#endif

namespace actorserve::cluster {

#ifdef ACTORSERVE_HAS_CAF_OPENSSL
bool tls_error_queue_fix_linked(); // tls_error_queue.cpp
#endif

bool tls_available() {
#ifdef ACTORSERVE_HAS_CAF_OPENSSL
  return true;
#else
  return false;
#endif
}

void validate_tls(const cluster_tls& tls) {
  if (!tls.enabled())
    return;
  if (!tls_available())
    throw std::runtime_error("--cluster-tls-*: this build has no caf_openssl (install libcaf-dev with libcaf_openssl)");
  auto check = [](const std::string& path, const char* flag) {
    if (path.empty())
      throw std::runtime_error(std::string("cluster TLS needs ") + flag +
                               " (all of --cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca)");
    if (!std::ifstream(path).good())
      throw std::runtime_error(std::string(flag) + " " + path + ": cannot read the file");
  };
  check(tls.cert_file, "--cluster-tls-cert");
  check(tls.key_file, "--cluster-tls-key");
  check(tls.ca_file, "--cluster-tls-ca");
}

void configure_tls(caf::actor_system_config& cfg, const cluster_tls& tls) {
  if (!tls.enabled())
    return;
#ifdef ACTORSERVE_HAS_CAF_OPENSSL
  cfg.openssl_certificate = tls.cert_file;
  cfg.openssl_key = tls.key_file;
  cfg.openssl_cafile = tls.ca_file;
  if (!tls_error_queue_fix_linked())
    throw std::logic_error("cluster TLS: the OpenSSL error-queue fix is missing");
  cfg.load<caf::openssl::manager>();
#else
  validate_tls(tls); // throws
#endif
}

caf::io::middleman_actor peer_connector(caf::actor_system& sys, bool tls) {
#ifdef ACTORSERVE_HAS_CAF_OPENSSL
  if (tls)
    return sys.openssl_manager().actor_handle();
#endif
  return sys.middleman().actor_handle();
}

caf::expected<uint16_t> publish_node(caf::actor_system& sys, const caf::actor& node, uint16_t port, const char* host,
                                     bool tls) {
#ifdef ACTORSERVE_HAS_CAF_OPENSSL
  if (tls)
    return caf::openssl::publish(node, port, host, true);
#endif
  return sys.middleman().publish(node, port, host, true);
}

} // namespace actorserve::cluster

#pragma once
// Optional TLS between cluster nodes (CAF 0.17's caf_openssl). With a certificate, its key and
// a CA file, every cluster connection is TLS 1.2 and both ends must present a certificate
// signed by that CA (caf_openssl sets SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT), so a
// node with a certificate from another CA, or a node without TLS, cannot join: its connection
// is closed during the handshake and the connecting side logs why it could not connect.
// No hostname check: membership is "holds a certificate of the cluster CA" (a Secret).

#include <string>

namespace actorserve::cluster {

struct cluster_tls {
  std::string cert_file; // PEM certificate (chain) of this node
  std::string key_file;  // its PEM private key
  std::string ca_file;   // PEM CA certificate(s) peers must be signed by
  bool enabled() const { return !cert_file.empty() || !key_file.empty() || !ca_file.empty(); }
};

/// True when this build has caf_openssl.
bool tls_available();
/// Throws std::runtime_error naming the problem: a missing flag, an unreadable file, or a
/// build without caf_openssl.
void validate_tls(const cluster_tls& tls);

} // namespace actorserve::cluster

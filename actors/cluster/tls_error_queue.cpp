// Works around a bug of caf_openssl 0.17: its sessions call SSL_read/SSL_write/SSL_accept/
// SSL_connect and then SSL_get_error without clearing the thread's OpenSSL error queue first,
// as OpenSSL requires. One failed handshake (a node without TLS, or with another CA's
// certificate, knocking on the cluster port) leaves errors in the queue of the multiplexer
// thread, and the next read of a healthy connection that merely has no data yet is then taken
// for a fatal error: CAF closes it, and a TLS cluster drops its good connections for as long as
// anyone keeps knocking (seen on loopback: a pair of nodes reconnecting several times a second).
//
// The executable defines these four symbols; the dynamic linker binds libcaf_openssl's calls to
// them (symbols of the executable come first), and each clears the queue and calls OpenSSL's own.
#ifdef ACTORSERVE_HAS_CAF_OPENSSL

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <dlfcn.h>

namespace {
template <class Fn> Fn next_symbol(const char* name) { return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name)); }
} // namespace

extern "C" {

int SSL_read(SSL* ssl, void* buf, int num) {
  static const auto real = next_symbol<int (*)(SSL*, void*, int)>("SSL_read");
  ERR_clear_error();
  return real(ssl, buf, num);
}

int SSL_write(SSL* ssl, const void* buf, int num) {
  static const auto real = next_symbol<int (*)(SSL*, const void*, int)>("SSL_write");
  ERR_clear_error();
  return real(ssl, buf, num);
}

int SSL_accept(SSL* ssl) {
  static const auto real = next_symbol<int (*)(SSL*)>("SSL_accept");
  ERR_clear_error();
  return real(ssl);
}

int SSL_connect(SSL* ssl) {
  static const auto real = next_symbol<int (*)(SSL*)>("SSL_connect");
  ERR_clear_error();
  return real(ssl);
}

} // extern "C"

namespace actorserve::cluster {
// Referenced by tls.cpp so the linker keeps this object file (it is otherwise only needed by a
// shared library, which does not pull archive members).
bool tls_error_queue_fix_linked() { return true; }
} // namespace actorserve::cluster

#endif

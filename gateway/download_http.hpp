#pragma once
// The HTTP side of `actorserve download`: URLs, proxies, and GET/HEAD with redirects handled
// by hand so that the Hub token is sent only to the Hub's own host (a 302 to a CDN, possibly
// on another host and port, must not carry it), and so that a Range request keeps its range
// across redirects.

#include <httplib.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace actorserve::download {

struct url {
  std::string scheme; // "http" or "https"
  std::string host;
  int port = 0;
  std::string target; // path and query, starting with '/'

  std::string origin() const; // scheme://host:port
  std::string str() const { return origin() + target; }
};

/// Parses an absolute http(s) URL. Throws std::invalid_argument naming the problem.
url parse_url(std::string_view text);
/// Resolves a Location header (absolute, scheme-relative or path) against `base`.
url resolve_location(const url& base, std::string_view location);
/// Percent-encodes everything but unreserved characters (and '/' when keep_slash).
std::string percent_encode(std::string_view text, bool keep_slash);

/// The response head of a request after redirects.
struct response_head {
  int status = 0;
  httplib::Headers headers;
  url final_url;
  std::string header(const std::string& name) const;
};

class http_session {
public:
  /// `token` goes into "Authorization: Bearer" for requests to `endpoint`'s origin only.
  http_session(url endpoint, std::string token, std::chrono::seconds read_timeout);

  /// GET with a small body held in memory (API calls). Follows redirects.
  response_head get_text(const url& u, std::string& body);
  /// HEAD without following redirects to other origins, as huggingface_hub does for file
  /// metadata (the X-Linked-* headers live on the Hub's redirect response).
  response_head head(const url& u);

  /// Streaming GET that follows redirects. `on_head` sees the final response's status and
  /// headers and returns false to stop; `on_data` receives the body. Returns the transport
  /// error (httplib::Error::Success when the whole body arrived).
  httplib::Error get_stream(const url& u, const httplib::Headers& extra,
                            const std::function<bool(const response_head&)>& on_head,
                            const std::function<bool(const char*, size_t)>& on_data);

private:
  std::unique_ptr<httplib::Client> client_for(const url& u) const;
  httplib::Headers headers_for(const url& u, const httplib::Headers& extra) const;

  url endpoint_;
  std::string token_;
  std::chrono::seconds read_timeout_;
};

constexpr int max_redirects = 10;

bool is_redirect(int status);

} // namespace actorserve::download

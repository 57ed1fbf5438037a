#include "gateway/download_http.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <stdexcept>

namespace actorserve::download {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

const char* env(const char* upper_name, const char* lower_name) {
  if (const char* v = std::getenv(lower_name); v && *v)
    return v;
  if (const char* v = std::getenv(upper_name); v && *v)
    return v;
  return nullptr;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

// NO_PROXY: comma-separated host names or suffixes (".example.com", "example.com"), or "*".
bool bypasses_proxy(const std::string& host) {
  if (is_loopback(host))
    return true;
  const char* no_proxy = env("NO_PROXY", "no_proxy");
  if (!no_proxy)
    return false;
  std::string list = lower(no_proxy), h = lower(host);
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos)
      end = list.size();
    std::string entry = list.substr(start, end - start);
    entry.erase(std::remove_if(entry.begin(), entry.end(), [](unsigned char c) { return std::isspace(c); }),
                entry.end());
    if (!entry.empty() && entry.front() == '.')
      entry.erase(0, 1);
    if (entry == "*" || entry == h ||
        (!entry.empty() && h.size() > entry.size() && h.compare(h.size() - entry.size(), entry.size(), entry) == 0 &&
         h[h.size() - entry.size() - 1] == '.'))
      return true;
    start = end + 1;
  }
  return false;
}

} // namespace

std::string url::origin() const { return scheme + "://" + host + ":" + std::to_string(port); }

url parse_url(std::string_view text) {
  url u;
  auto scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos)
    throw std::invalid_argument("'" + std::string(text) + "' is not an absolute http(s) URL");
  u.scheme = lower(text.substr(0, scheme_end));
  if (u.scheme != "http" && u.scheme != "https")
    throw std::invalid_argument("'" + std::string(text) + "': only http and https URLs are supported");
  auto rest = text.substr(scheme_end + 3);
  auto path_start = rest.find_first_of("/?");
  auto authority = rest.substr(0, path_start);
  if (authority.find('@') != std::string_view::npos)
    throw std::invalid_argument("'" + std::string(text) + "': credentials in URLs are not supported");
  u.target = path_start == std::string_view::npos ? "/" : std::string(rest.substr(path_start));
  if (u.target.front() == '?')
    u.target.insert(0, "/");
  u.port = u.scheme == "https" ? 443 : 80;
  // [v6]:port or host:port
  size_t colon;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      throw std::invalid_argument("'" + std::string(text) + "': unterminated IPv6 address");
    u.host = std::string(authority.substr(1, close - 1));
    colon = authority.size() > close + 1 && authority[close + 1] == ':' ? close + 1 : std::string_view::npos;
  } else {
    colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
  }
  if (colon != std::string_view::npos) {
    auto port_text = std::string(authority.substr(colon + 1));
    try {
      size_t used = 0;
      u.port = std::stoi(port_text, &used);
      if (used != port_text.size() || u.port <= 0 || u.port > 65535)
        throw std::invalid_argument("bad port");
    } catch (const std::exception&) {
      throw std::invalid_argument("'" + std::string(text) + "': bad port '" + port_text + "'");
    }
  }
  if (u.host.empty())
    throw std::invalid_argument("'" + std::string(text) + "' has no host");
  return u;
}

url resolve_location(const url& base, std::string_view location) {
  if (location.find("://") != std::string_view::npos)
    return parse_url(location);
  if (location.substr(0, 2) == "//")
    return parse_url(base.scheme + ":" + std::string(location));
  url u = base;
  if (!location.empty() && location.front() == '/') {
    u.target = std::string(location);
  } else {
    auto dir_end = base.target.find_first_of('?');
    auto dir = base.target.substr(0, dir_end);
    u.target = dir.substr(0, dir.rfind('/') + 1) + std::string(location);
  }
  return u;
}

std::string percent_encode(std::string_view text, bool keep_slash) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

std::string response_head::header(const std::string& name) const {
  // httplib keeps header names as received; HTTP says they are case-insensitive.
  for (const auto& [key, value] : headers)
    if (lower(key) == lower(name))
      return value;
  return {};
}

http_session::http_session(url endpoint, std::string token, std::chrono::seconds read_timeout)
    : endpoint_(std::move(endpoint)), token_(std::move(token)), read_timeout_(read_timeout) {}

std::unique_ptr<httplib::Client> http_session::client_for(const url& u) const {
  auto client = std::make_unique<httplib::Client>(u.origin());
  client->set_connection_timeout(std::chrono::seconds(10));
  client->set_read_timeout(read_timeout_);
  client->set_follow_location(false);
  client->set_keep_alive(false);
  if (!bypasses_proxy(u.host)) {
    const char* proxy = u.scheme == "https" ? env("HTTPS_PROXY", "https_proxy") : env("HTTP_PROXY", "http_proxy");
    if (proxy) {
      auto p = parse_url(proxy);
      client->set_proxy(p.host, p.port);
    }
  }
  return client;
}

httplib::Headers http_session::headers_for(const url& u, const httplib::Headers& extra) const {
  httplib::Headers h = extra;
  h.emplace("User-Agent", "actorserve-download/1");
  // The token belongs to the Hub; a redirect to a CDN or any other origin does not get it.
  if (!token_.empty() && u.origin() == endpoint_.origin())
    h.emplace("Authorization", "Bearer " + token_);
  return h;
}

response_head http_session::get_text(const url& start, std::string& body) {
  response_head head;
  auto error = get_stream(
      start, {}, [&](const response_head& h) { head = h; return true; },
      [&](const char* data, size_t size) {
        body.append(data, size);
        return body.size() < (size_t{64} << 20); // API answers are small; refuse runaway bodies
      });
  if (error != httplib::Error::Success)
    throw std::runtime_error("GET " + head.final_url.str() + ": " + httplib::to_string(error));
  return head;
}

response_head http_session::head(const url& start) {
  url current = start;
  for (int hop = 0; hop <= max_redirects; ++hop) {
    auto client = client_for(current);
    auto result = client->Head(current.target, headers_for(current, {}));
    if (!result)
      throw std::runtime_error("HEAD " + current.str() + ": " + httplib::to_string(result.error()));
    response_head h{result->status, result->headers, current};
    // huggingface_hub follows only relative (same-origin) redirects here: the metadata of an
    // LFS file is on the Hub's own 302, not on the CDN.
    auto location = h.header("Location");
    if (is_redirect(h.status) && !location.empty() && location.find("://") == std::string::npos) {
      current = resolve_location(current, location);
      continue;
    }
    return h;
  }
  throw std::runtime_error("HEAD " + start.str() + ": more than " + std::to_string(max_redirects) + " redirects");
}

httplib::Error http_session::get_stream(const url& start, const httplib::Headers& extra,
                                        const std::function<bool(const response_head&)>& on_head,
                                        const std::function<bool(const char*, size_t)>& on_data) {
  url current = start;
  for (int hop = 0; hop <= max_redirects; ++hop) {
    auto client = client_for(current);
    response_head head{0, {}, current};
    bool redirected = false;
    bool wanted = false;
    auto result = client->Get(
        current.target, headers_for(current, extra),
        [&](const httplib::Response& r) {
          head.status = r.status;
          head.headers = r.headers;
          if (is_redirect(r.status) && r.has_header("Location")) {
            redirected = true;
            return false; // do not read the redirect's body
          }
          wanted = on_head(head);
          return wanted;
        },
        [&](const char* data, size_t size) { return on_data(data, size); });
    if (redirected) {
      current = resolve_location(current, head.header("Location"));
      continue;
    }
    if (head.status == 0 && !result)
      on_head(head); // never connected: tell the caller the URL that failed
    return result ? httplib::Error::Success : result.error();
  }
  response_head too_many{0, {}, current};
  on_head(too_many);
  return httplib::Error::ExceedRedirectCount;
}

} // namespace actorserve::download

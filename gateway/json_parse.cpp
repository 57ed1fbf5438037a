#include "gateway/json_parse.hpp"

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace actorserve::gateway {
namespace {

using ojson = nlohmann::ordered_json;

// Objects up to this many keys find duplicates by a linear scan; larger ones get a hash index.
constexpr size_t linear_key_limit = 16;

// nlohmann's SAX interface, building the document with an O(1) duplicate-key check.
class ordered_builder {
public:
  explicit ordered_builder(ojson& root) : root_(root) {}

  bool null() { return add(ojson(nullptr)); }
  bool boolean(bool v) { return add(ojson(v)); }
  bool number_integer(ojson::number_integer_t v) { return add(ojson(v)); }
  bool number_unsigned(ojson::number_unsigned_t v) { return add(ojson(v)); }
  bool number_float(ojson::number_float_t v, const std::string&) { return add(ojson(v)); }
  bool string(std::string& v) { return add(ojson(std::move(v))); }
  bool binary(ojson::binary_t& v) { return add(ojson(std::move(v))); }
  bool start_object(size_t) { return open(ojson::object()); }
  bool start_array(size_t) { return open(ojson::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(std::string& k) {
    stack_.back().key = std::move(k);
    return true;
  }
  template <class Exception> bool parse_error(size_t, const std::string&, const Exception& e) { throw e; }

private:
  struct frame {
    ojson* container;
    std::string key; // objects: the key of the value that comes next
    std::unique_ptr<std::unordered_map<std::string, size_t>> index; // key -> position
  };

  // Places `v` in the open container (or as the root); returns where it went.
  ojson* place(ojson&& v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    frame& f = stack_.back();
    if (f.container->is_array()) {
      auto& items = *f.container->get_ptr<ojson::array_t*>();
      items.push_back(std::move(v));
      return &items.back();
    }
    auto& entries = *f.container->get_ptr<ojson::object_t*>();
    if (const size_t at = find_key(f, entries); at != entries.size()) {
      auto& entry = *(entries.begin() + ptrdiff_t(at));
      entry.second = std::move(v);
      return &entry.second;
    }
    entries.emplace_back(f.key, std::move(v));
    if (f.index)
      f.index->emplace(std::move(f.key), entries.size() - 1);
    return &entries.back().second;
  }

  static size_t find_key(frame& f, const ojson::object_t& entries) {
    if (!f.index && entries.size() > linear_key_limit) {
      f.index = std::make_unique<std::unordered_map<std::string, size_t>>();
      for (size_t i = 0; i < entries.size(); ++i)
        f.index->emplace((entries.begin() + ptrdiff_t(i))->first, i);
    }
    if (f.index) {
      auto it = f.index->find(f.key);
      return it == f.index->end() ? entries.size() : it->second;
    }
    for (size_t i = 0; i < entries.size(); ++i)
      if ((entries.begin() + ptrdiff_t(i))->first == f.key)
        return i;
    return entries.size();
  }

  bool add(ojson&& v) {
    place(std::move(v));
    return true;
  }
  bool open(ojson&& v) {
    // A container's address is stable while it is open: its parent changes only after it closes.
    stack_.push_back({place(std::move(v)), {}, nullptr});
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }

  ojson& root_;
  std::vector<frame> stack_;
};

} // namespace

ojson parse_ordered_json(std::string_view text) {
  ojson root;
  ordered_builder builder(root);
  ojson::sax_parse(text.begin(), text.end(), &builder);
  return root;
}

} // namespace actorserve::gateway

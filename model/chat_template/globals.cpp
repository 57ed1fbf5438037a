// The globals of transformers' template environment: jinja2's range (with the sandbox's cap),
// dict, namespace, cycler and joiner, and transformers' raise_exception and strftime_now.
#include "model/chat_template/builtins.hpp"
#include "model/chat_template/interpreter.hpp"

#include <ctime>
#include <unordered_map>

namespace actorserve::chat_template {

namespace {

class builtin_function : public callable {
public:
  using fn_type = value (*)(interpreter&, call_arguments&);
  builtin_function(std::string name, fn_type fn) : name_(std::move(name)), fn_(fn) {}
  value call(interpreter& in, call_arguments& args) override {
    in.charge();
    return fn_(in, args);
  }
  std::string repr() const override { return "<built-in function " + name_ + ">"; }

private:
  std::string name_;
  fn_type fn_;
};

value g_range(interpreter& in, call_arguments& args) {
  if (!args.named.empty())
    throw_type_error("range() takes no keyword arguments");
  auto& p = args.positional;
  if (p.empty() || p.size() > 3)
    throw_type_error("range expected 1 to 3 arguments, got " + std::to_string(p.size()));
  std::int64_t start = 0, stop, step = 1;
  if (p.size() == 1) {
    stop = to_index(p[0], nullptr);
  } else {
    start = to_index(p[0], nullptr);
    stop = to_index(p[1], nullptr);
    if (p.size() == 3)
      step = to_index(p[2], nullptr);
  }
  if (step == 0)
    throw_type_error("range() arg 3 must not be zero");
  __int128 count = 0;
  if (step > 0 && stop > start)
    count = (static_cast<__int128>(stop) - start + step - 1) / step;
  else if (step < 0 && stop < start)
    count = (static_cast<__int128>(start) - stop - step - 1) / -step;
  if (count > 100000)
    throw template_error(template_error_kind::limit,
                         "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  in.charge(static_cast<std::uint64_t>(count));
  value_list out;
  for (std::int64_t k = 0; k < count; ++k)
    out.push_back(value(start + k * step));
  return value::make_list(std::move(out));
}

std::shared_ptr<value_dict> dict_from_arguments(interpreter& in, call_arguments& args, const char* name) {
  auto dict = std::make_shared<value_dict>();
  if (args.positional.size() > 1)
    throw_type_error(std::string(name) + " expected at most 1 argument, got " + std::to_string(args.positional.size()));
  if (!args.positional.empty()) {
    const value& source = args.positional[0];
    if (source.is_dict()) {
      for (const auto& [key, item] : source.dict().entries())
        dict->set(key, item);
    } else {
      for (auto& pair : in.iterate(source)) {
        value_list kv = in.iterate(pair);
        if (kv.size() != 2)
          throw_type_error("dictionary update sequence element has length " + std::to_string(kv.size()) + "; 2 is required");
        dict->set(kv[0], kv[1]);
      }
    }
  }
  for (auto& [key, item] : args.named)
    dict->set(value(key), item);
  return dict;
}

value g_dict(interpreter& in, call_arguments& args) { return value::make_dict(dict_from_arguments(in, args, "dict")); }

value g_namespace(interpreter& in, call_arguments& args) {
  auto attributes = dict_from_arguments(in, args, "namespace");
  in.track_namespace(attributes);
  return value::make_namespace(std::move(attributes));
}

value g_raise_exception(interpreter&, call_arguments& args) {
  auto a = bind_arguments("raise_exception", args, {{"message", {}}});
  throw template_error(template_error_kind::raised, to_str(a[0]));
}

value g_strftime_now(interpreter& in, call_arguments& args) {
  auto a = bind_arguments("strftime_now", args, {{"format", {}}});
  if (!a[0].is_string())
    throw_type_error("strftime() argument 1 must be str, not " + type_name(a[0]));
  auto now = in.options().now ? in.options().now() : std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm local{};
  localtime_r(&t, &local);
  std::string out;
  // strftime cannot tell "empty result" from "buffer too small": grow until it fits.
  for (std::size_t size = 256; size <= (1u << 20); size *= 4) {
    std::string buf(size, '\0');
    std::size_t n = std::strftime(buf.data(), size, a[0].text().c_str(), &local);
    if (n > 0 || a[0].text().empty()) {
      out.assign(buf.data(), n);
      return value(std::move(out));
    }
  }
  return value(std::move(out));
}

class cycler_object : public object_value, public std::enable_shared_from_this<cycler_object> {
public:
  explicit cycler_object(value_list items) : items_(std::move(items)) {}
  value attribute(const std::string& name) override {
    if (name == "current")
      return items_[position_];
    if (name == "next" || name == "reset")
      return value::make_function(std::make_shared<cycler_method>(shared_from_this(), name == "next"));
    return value::undefined("'Cycler object' has no attribute '" + name + "'");
  }
  std::string type_name() const override { return "Cycler"; }
  std::string repr() const override { return "<Cycler>"; }

private:
  class cycler_method : public callable {
  public:
    cycler_method(std::shared_ptr<cycler_object> c, bool advance) : cycler_(std::move(c)), advance_(advance) {}
    value call(interpreter&, call_arguments& args) override {
      bind_arguments(advance_ ? "next" : "reset", args, {});
      if (!advance_) {
        cycler_->position_ = 0;
        return value::none();
      }
      value out = cycler_->items_[cycler_->position_];
      cycler_->position_ = (cycler_->position_ + 1) % cycler_->items_.size();
      return out;
    }
    std::string repr() const override { return "<bound method Cycler>"; }

  private:
    std::shared_ptr<cycler_object> cycler_;
    bool advance_;
  };
  value_list items_;
  std::size_t position_ = 0;
};

value g_cycler(interpreter&, call_arguments& args) {
  if (args.positional.empty())
    throw_type_error("at least one item has to be provided");
  return value::make_object(std::make_shared<cycler_object>(args.positional));
}

class joiner_function : public callable {
public:
  explicit joiner_function(std::string sep) : sep_(std::move(sep)) {}
  value call(interpreter&, call_arguments& args) override {
    bind_arguments("joiner", args, {});
    if (!used_) {
      used_ = true;
      return value("");
    }
    return value(sep_);
  }
  std::string repr() const override { return "<Joiner>"; }

private:
  std::string sep_;
  bool used_ = false;
};

value g_joiner(interpreter&, call_arguments& args) {
  auto a = bind_arguments("joiner", args, {{"sep", value(", ")}});
  return value::make_function(std::make_shared<joiner_function>(to_str(a[0])));
}

} // namespace

const value* find_global(const std::string& name) {
  static const std::unordered_map<std::string, value> globals = [] {
    std::unordered_map<std::string, value> g;
    auto add = [&](const char* n, builtin_function::fn_type fn) {
      g.emplace(n, value::make_function(std::make_shared<builtin_function>(n, fn)));
    };
    add("range", g_range);
    add("dict", g_dict);
    add("namespace", g_namespace);
    add("raise_exception", g_raise_exception);
    add("strftime_now", g_strftime_now);
    add("cycler", g_cycler);
    add("joiner", g_joiner);
    return g;
  }();
  auto it = globals.find(name);
  return it == globals.end() ? nullptr : &it->second;
}

} // namespace actorserve::chat_template

#include "serve/http/json_api.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <set>

namespace seqrec::serve::http {

namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& message) {
  throw ApiError(400, message);
}

/// Nesting depth of a JSON text (brackets outside strings), to refuse absurd nesting before
/// parsing; stops counting once over `limit`.
int nesting_depth(std::string_view s, int limit) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
      if (max_depth > limit) return max_depth;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

void check_fields(const json& j, std::initializer_list<const char*> allowed) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || it.key() == a;
    if (!ok) {
      std::string names;
      for (const char* a : allowed) names += std::string(names.empty() ? "" : ", ") + a;
      bad("unknown field '" + it.key() + "' (known: " + names + ")");
    }
  }
}

std::string type_name(const json& v) {
  if (v.is_number_float()) return "a fractional number";
  if (v.is_number()) return "an integer";
  return std::string("a ") + v.type_name();
}

/// An id: a string, or an integer written in decimal (JSON numbers are a common way to
/// send numeric ids).
std::string id_of(const json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  bad(where + " must be a string or an integer, got " + type_name(v));
}

std::vector<std::string> id_list(const json& j, const char* field) {
  const json& v = j.at(field);
  if (!v.is_array())
    bad(std::string("'") + field + "' must be an array of item ids, got " + type_name(v));
  std::vector<std::string> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    out.push_back(id_of(v[i], std::string("'") + field + "[" + std::to_string(i) + "]'"));
  return out;
}

RecommendOptions parse_options(const json& j) {
  RecommendOptions o;
  if (auto it = j.find("k"); it != j.end()) {
    const json& v = *it;
    if (!v.is_number_integer() && !v.is_number_unsigned())
      bad("'k' must be an integer, got " + type_name(v));
    // Out of int32 range: clamp, so that the core's range check reports it.
    if (v.is_number_unsigned())
      o.k = static_cast<int32_t>(std::min<uint64_t>(v.get<uint64_t>(), 2147483647u));
    else
      o.k =
          static_cast<int32_t>(std::clamp<int64_t>(v.get<int64_t>(), -2147483647 - 1, 2147483647));
  }
  if (auto it = j.find("exclude_seen"); it != j.end()) {
    if (!it->is_boolean()) bad("'exclude_seen' must be true or false, got " + type_name(*it));
    o.exclude_seen = it->get<bool>();
  }
  if (j.contains("allowed_items")) o.allowed_items = id_list(j, "allowed_items");
  if (j.contains("forbidden_items")) o.forbidden_items = id_list(j, "forbidden_items");
  return o;
}

}  // namespace

void parse_item_request(std::string_view body, std::string* id, json* features) {
  const json j = parse_body(body);
  check_fields(j, {"id", "features"});
  if (!j.contains("id")) bad("missing field 'id' (the item's id)");
  *id = id_of(j.at("id"), "'id'");
  *features = json();
  if (auto it = j.find("features"); it != j.end() && !it->is_null()) {
    if (!it->is_object())
      bad("'features' must be an object of column: value, got " + type_name(*it));
    *features = *it;
  }
}

json to_json(const AddItemResult& r) {
  json j = {{"id", r.id},
            {"index", r.index},
            {"added", true},
            {"restored", r.restored},
            {"live_items", r.live_items},
            {"catalogue_version", r.catalogue_version}};
  if (!r.unknown_values.empty()) j["unknown_values"] = r.unknown_values;
  return j;
}

json to_json(const RemoveItemResult& r) {
  return {{"id", r.id},
          {"index", r.index},
          {"retired", true},
          {"was_added", r.added},
          {"live_items", r.live_items},
          {"catalogue_version", r.catalogue_version}};
}

json parse_body(std::string_view body, int max_depth) {
  if (body.empty()) bad("the request body is empty; send a JSON object");
  if (nesting_depth(body, max_depth) > max_depth)
    bad("the JSON body is nested deeper than " + std::to_string(max_depth) + " levels");
  json j;
  try {
    j = json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." -> the part
    // after the tag.
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    bad("malformed JSON: " + what);
  }
  if (!j.is_object()) bad("the request body must be a JSON object, got " + type_name(j));
  return j;
}

SessionRequest parse_session_request(std::string_view body) {
  const json j = parse_body(body);
  check_fields(j, {"session_id", "items", "timestamps", "k", "exclude_seen", "allowed_items",
                   "forbidden_items"});
  SessionRequest r;
  if (!j.contains("session_id")) bad("missing field 'session_id'");
  r.session_id = id_of(j["session_id"], "'session_id'");
  std::vector<std::string> items;
  if (j.contains("items")) items = id_list(j, "items");
  r.events.resize(items.size());
  for (size_t i = 0; i < items.size(); ++i) r.events[i].item = std::move(items[i]);
  if (auto it = j.find("timestamps"); it != j.end()) {
    if (!it->is_array()) bad("'timestamps' must be an array of numbers, got " + type_name(*it));
    if (it->size() != r.events.size())
      bad("'timestamps' has " + std::to_string(it->size()) + " entries but 'items' has " +
          std::to_string(r.events.size()));
    for (size_t i = 0; i < it->size(); ++i) {
      const json& t = (*it)[i];
      if (!t.is_number() || !std::isfinite(t.get<double>()))
        bad("'timestamps[" + std::to_string(i) + "]' must be a number, got " + type_name(t));
      r.events[i].timestamp = t.get<double>();
    }
  }
  r.options = parse_options(j);
  return r;
}

ItemsRequest parse_items_request(std::string_view body) {
  const json j = parse_body(body);
  check_fields(j, {"items", "k", "exclude_seen", "allowed_items", "forbidden_items"});
  if (!j.contains("items")) bad("missing field 'items'");
  ItemsRequest r;
  r.items = id_list(j, "items");
  r.options = parse_options(j);
  return r;
}

json to_json(const Recommendation& r) {
  json items = json::array();
  for (const auto& it : r.items) items.push_back({{"item", it.item}, {"score", it.score}});
  json j = {{"items", std::move(items)},
            {"k", r.k},
            {"exclude_seen", r.exclude_seen},
            {"unknown_items", r.unknown_items},
            {"model_generation", r.model_generation}};
  if (!r.unknown_filter_items.empty()) j["unknown_filter_items"] = r.unknown_filter_items;
  return j;
}

namespace {

void put_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

void put_strings(std::string& out, const std::vector<std::string>& v) {
  out.push_back('[');
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out.push_back(',');
    put_string(out, v[i]);
  }
  out.push_back(']');
}

void put_number(std::string& out, double x) {
  if (!std::isfinite(x)) {
    out += "null";  // as nlohmann::json writes non-finite numbers
    return;
  }
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, x);  // shortest round-trip form
  out.append(buf, res.ptr);
}

}  // namespace

std::string recommendation_body(const Recommendation& r, const std::string* session_id) {
  std::string out;
  out.reserve(64 + r.items.size() * 48);
  out += "{\"items\":[";
  for (size_t i = 0; i < r.items.size(); ++i) {
    out += i ? ",{\"item\":" : "{\"item\":";
    put_string(out, r.items[i].item);
    out += ",\"score\":";
    put_number(out, static_cast<double>(r.items[i].score));
    out.push_back('}');
  }
  out += "],\"k\":";
  out += std::to_string(r.k);
  out += r.exclude_seen ? ",\"exclude_seen\":true" : ",\"exclude_seen\":false";
  out += ",\"unknown_items\":";
  put_strings(out, r.unknown_items);
  if (!r.unknown_filter_items.empty()) {
    out += ",\"unknown_filter_items\":";
    put_strings(out, r.unknown_filter_items);
  }
  out += ",\"model_generation\":";
  out += std::to_string(r.model_generation);
  if (session_id) {
    out += ",\"session_id\":";
    put_string(out, *session_id);
    out += ",\"session_length\":";
    out += std::to_string(r.session_length);
    out += r.new_session ? ",\"new_session\":true" : ",\"new_session\":false";
    if (r.session_reset) out += ",\"session_reset\":true";
  }
  out.push_back('}');
  return out;
}

json to_json(const ServedModelInfo& m) {
  return {{"type", m.type},
          {"path", m.path},
          {"n_items", m.n_items},
          {"generation", m.generation},
          {"loaded_at", m.loaded_unix_seconds},
          {"incremental", m.incremental},
          {"context_length", m.context_length},
          {"history_length", m.history_length},
          {"exclude_seen_default", m.exclude_seen_default},
          {"scoring", m.scoring},
          {"catalogue", m.catalogue},
          {"config", m.config},
          {"meta", m.meta}};
}

json to_json(const SessionInfo& s) {
  json j = {{"session_id", s.session_id},
            {"length", s.length},
            {"history", s.history},
            {"idle_seconds", s.idle_seconds},
            {"bytes", s.bytes}};
  j["last_event_timestamp"] =
      s.last_event_timestamp ? json(*s.last_event_timestamp) : json(nullptr);
  return j;
}

json to_json(const ReloadResult& r) {
  return {{"reloaded", true},
          {"generation", r.generation},
          {"catalogue_changed", r.catalogue_changed},
          {"sessions_dropped", r.sessions_dropped},
          {"seconds", r.seconds},
          {"load_seconds", r.load_seconds},
          {"swap_seconds", r.swap_seconds}};
}

std::string error_body(int status, const std::string& message) {
  // Messages may quote client bytes that are not UTF-8: replace them instead of failing.
  return json{{"error", {{"status", status}, {"message", message}}}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
}

}  // namespace seqrec::serve::http

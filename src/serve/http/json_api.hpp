// The JSON edge of the HTTP server: request bodies -> typed requests of the recommender
// core, and its typed answers -> JSON. Nothing else in the server sees JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

#include "seqrec/recommender.hpp"

namespace seqrec::serve::http {

/// A request the server refuses: the HTTP status (4xx) and a message for the client.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

/// Parses a body that must be a JSON object no deeper than `max_depth`; ApiError(400)
/// otherwise, with the parser's position.
nlohmann::json parse_body(std::string_view body, int max_depth = 32);

/// POST /v1/events: {"session_id", "items"?, "timestamps"?, "k"?, "exclude_seen"?,
/// "allowed_items"?, "forbidden_items"?}.
SessionRequest parse_session_request(std::string_view body);
/// POST /v1/recommend: {"items", "k"?, "exclude_seen"?, "allowed_items"?, "forbidden_items"?}.
ItemsRequest parse_items_request(std::string_view body);

/// POST /v1/items: {"id", "features"?}; the id (string or integer) into *id, the features
/// (an object, or null when absent) into *features.
void parse_item_request(std::string_view body, std::string* id, nlohmann::json* features);

nlohmann::json to_json(const Recommendation& r);
nlohmann::json to_json(const AddItemResult& r);
nlohmann::json to_json(const RemoveItemResult& r);
/// The response body of POST /v1/events (with `session_id`) or /v1/recommend (nullptr):
/// the same fields as to_json() (plus the session's), written directly (the hot path).
std::string recommendation_body(const Recommendation& r, const std::string* session_id);
nlohmann::json to_json(const ServedModelInfo& m);
nlohmann::json to_json(const SessionInfo& s);
nlohmann::json to_json(const ReloadResult& r);
/// {"error": {"status": S, "message": M}}.
std::string error_body(int status, const std::string& message);

}  // namespace seqrec::serve::http

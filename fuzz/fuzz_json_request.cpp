// libFuzzer harness: the JSON request parsers of the server (POST /v1/events and
// POST /v1/recommend bodies, src/serve/http/json_api.hpp) and what the server does with a
// request they accept: the Recommender answers it (on one of the committed model fixtures,
// tests/data/models) and the answer is written as the response body.
//
// Input: 1 option byte, then the body.
//   0  bit 0: endpoint (events, recommend); bits 1-3: the model (pop, sr, vsknn, gru4rec
//      through its dot-product head, gru4rec through Model::score, sasrec)
// Checks on an answer: K in range and at most K distinct items of the catalogue, best
// first; no forbidden item, only allowed ones; the session's items left out when
// exclude_seen; the response body is valid JSON holding the same answer as to_json().
#include <cmath>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "seqrec/error.hpp"
#include "seqrec/model.hpp"
#include "seqrec/recommender.hpp"
#include "serve/http/json_api.hpp"

#ifndef SEQREC_TEST_DATA_DIR
#error "SEQREC_TEST_DATA_DIR must name tests/data"
#endif

using namespace seqrec;
using namespace seqrec::serve::http;
using nlohmann::json;

namespace {

struct Served {
  std::unique_ptr<Recommender> rec;
  Vocab items;
};

std::vector<Served>& served() {
  static std::vector<Served> all = [] {
    std::vector<Served> v;
    const std::string dir = std::string(SEQREC_TEST_DATA_DIR) + "/models/";
    const std::pair<const char*, bool> models[] = {{"pop", true},      {"sr", true},
                                                   {"vsknn", true},    {"gru4rec", true},
                                                   {"gru4rec", false}, {"sasrec", true}};
    for (const auto& [name, head] : models) {
      RecommenderOptions o;
      o.max_sessions = 64;  // small, so that eviction runs
      o.sweep_interval_seconds = 0;
      o.max_history = 8;
      o.max_k = 50;
      o.dot_product_head = head;
      const std::string path = dir + name + "_v1.seqrec";
      Served s;
      s.items = load_model(path).items;
      s.rec = std::make_unique<Recommender>(path, o);
      v.push_back(std::move(s));
    }
    return v;
  }();
  return all;
}

void check_answer(const Served& s, const Recommendation& r, const RecommendOptions& o,
                  const std::vector<std::string>& seen, const std::string* session_id) {
  const RecommenderOptions& ro = s.rec->options();
  SEQREC_FUZZ_CHECK(r.k >= 1 && r.k <= ro.max_k, "k " + std::to_string(r.k));
  SEQREC_FUZZ_CHECK(r.items.size() <= static_cast<size_t>(r.k), "more than k items");
  std::set<std::string> forbidden(o.forbidden_items.begin(), o.forbidden_items.end());
  std::set<std::string> allowed;
  if (o.allowed_items) allowed.insert(o.allowed_items->begin(), o.allowed_items->end());
  std::set<std::string> seen_set(seen.begin(), seen.end()), out;
  for (size_t i = 0; i < r.items.size(); ++i) {
    const ScoredItem& it = r.items[i];
    SEQREC_FUZZ_CHECK(s.items.find(it.item) >= 0, "not in the catalogue: " + it.item);
    SEQREC_FUZZ_CHECK(out.insert(it.item).second, "recommended twice: " + it.item);
    SEQREC_FUZZ_CHECK(!forbidden.count(it.item), "forbidden item recommended: " + it.item);
    SEQREC_FUZZ_CHECK(!o.allowed_items || allowed.count(it.item), "not allowed: " + it.item);
    SEQREC_FUZZ_CHECK(!r.exclude_seen || !seen_set.count(it.item), "seen item: " + it.item);
    if (i > 0 && !std::isnan(it.score) && !std::isnan(r.items[i - 1].score))
      SEQREC_FUZZ_CHECK(r.items[i - 1].score >= it.score, "not best first");
  }
  const std::string body = recommendation_body(r, session_id);
  const json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  SEQREC_FUZZ_CHECK(!parsed.is_discarded(), "the response body is not JSON: " + body);
  json expected = to_json(r);
  if (session_id) {
    expected["session_id"] = *session_id;
    expected["session_length"] = r.session_length;
    expected["new_session"] = r.new_session;
    if (r.session_reset) expected["session_reset"] = true;
  }
  // Non-finite scores are written as null by both.
  SEQREC_FUZZ_CHECK(parsed == expected || parsed.dump() == expected.dump(),
                    "the body " + body + " differs from " + expected.dump());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)served();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Bytes in(data, size);
  const uint8_t opt = in.byte();
  const std::string_view body = in.rest();
  std::vector<Served>& all = served();
  Served& s = all[((opt >> 1) & 7) % all.size()];
  try {
    if (opt & 1) {
      const ItemsRequest req = parse_items_request(body);
      const Recommendation r = s.rec->recommend(req);
      check_answer(s, r, req.options, req.items, nullptr);
    } else {
      const SessionRequest req = parse_session_request(body);
      const Recommendation r = s.rec->add_events(req);
      std::vector<std::string> seen;
      if (const auto info = s.rec->session_info(req.session_id)) {
        seen = info->history;
        (void)to_json(*info).dump(-1, ' ', false, json::error_handler_t::replace);
      }
      check_answer(s, r, req.options, seen, &req.session_id);
      if (req.events.size() % 3 == 2) (void)s.rec->drop_session(req.session_id);
    }
  } catch (const ApiError& e) {
    SEQREC_FUZZ_CHECK(e.status() >= 400 && e.status() < 500, "ApiError status");
    (void)error_body(e.status(), e.what());
  } catch (const InputError& e) {
    (void)error_body(400, e.what());  // the core's refusals (K out of range, long session id)
  }
  return 0;
}

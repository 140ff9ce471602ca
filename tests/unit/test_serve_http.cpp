// The HTTP layer of the server (src/serve/http), in process: JSON parsing into typed
// requests, every error answered as a 4xx JSON body, metrics, a fuzz run of random
// bytes and mutated JSON that the server must survive, and the routes on raw sockets
// (HEAD, chunked bodies, 100-continue, many more keep-alive connections than workers).
#include <gtest/gtest.h>
#include <httplib.h>

#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "seqrec/error.hpp"
#include "seqrec/model.hpp"
#include "seqrec/recommender.hpp"
#include "serve/http/json_api.hpp"
#include "serve/http/metrics.hpp"
#include "serve/http/server.hpp"
#include "unit/raw_http_client.hpp"

using namespace seqrec;
using namespace seqrec::serve::http;
using nlohmann::json;
using namespace std::chrono_literals;
using seqrec_test::RawClient;
using seqrec_test::RawResponse;

namespace {

/// Item i scores (n - i) plus 100 per occurrence in the prefix: predictable, no ties.
class RankModel final : public Model {
 public:
  explicit RankModel(int32_t n) : n_(n) {}
  std::string type() const override { return "rank"; }
  const Config& config() const override { return config_; }
  int32_t n_items() const override { return n_; }
  void fit(const SequenceSet&, int32_t, const FitContext&) override {}
  void score(std::span<const std::span<const int32_t>> seqs, std::span<const PrefixQuery> queries,
             float* out) const override {
    for (size_t q = 0; q < queries.size(); ++q) {
      float* row = out + q * static_cast<size_t>(n_);
      for (int32_t i = 0; i < n_; ++i) row[i] = static_cast<float>(n_ - i);
      auto seq = seqs[static_cast<size_t>(queries[q].seq)];
      for (int32_t l = 0; l < queries[q].len; ++l) row[seq[static_cast<size_t>(l)]] += 100.0f;
    }
  }
  void save(TensorWriter&) const override {}
  void load(const TensorReader&) override {}

 private:
  int32_t n_;
  Config config_;
};

std::shared_ptr<Recommender> make_recommender(int32_t n = 30) {
  ModelBundle b;
  b.model = std::make_unique<RankModel>(n);
  for (int32_t i = 0; i < n; ++i) b.items.add("it" + std::to_string(i));
  b.meta = {{"protocol", "session"}};
  RecommenderOptions o;
  o.sweep_interval_seconds = 0;
  o.max_k = 100;
  return std::make_shared<Recommender>(std::move(b), o);
}

/// A server on a free loopback port, running in a thread for the test's lifetime.
class ServeHttp : public ::testing::Test {
 protected:
  void SetUp() override {
    rec_ = make_recommender();
    HttpOptions o;
    o.port = 0;
    o.threads = 4;
    o.max_body = 4096;
    o.quiet = true;
    o.reload_min_interval_seconds = 0;  // the fuzz test reloads often
    server_ = std::make_unique<HttpServer>(rec_, o);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client_->set_read_timeout(10);
  }
  void TearDown() override {
    server_->stop();
    thread_.join();
  }
  /// status, parsed body (null when not JSON).
  std::pair<int, json> post(const std::string& path, const std::string& body) {
    auto res = client_->Post(path.c_str(), body, "application/json");
    if (!res) return {-1, json()};
    return {res->status, json::parse(res->body, nullptr, false)};
  }
  std::pair<int, json> get(const std::string& path) {
    auto res = client_->Get(path.c_str());
    if (!res) return {-1, json()};
    return {res->status, json::parse(res->body, nullptr, false)};
  }
  std::shared_ptr<Recommender> rec_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<httplib::Client> client_;
  std::thread thread_;
  int port_ = 0;
};

void expect_error(const std::pair<int, json>& r, int status, const std::string& fragment) {
  EXPECT_EQ(r.first, status) << r.second.dump();
  ASSERT_TRUE(r.second.is_object()) << "not JSON";
  ASSERT_TRUE(r.second.contains("error")) << r.second.dump();
  const std::string msg = r.second["error"]["message"].get<std::string>();
  EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
  EXPECT_EQ(r.second["error"]["status"], status);
}

}  // namespace

TEST(ServeJson, ParsesASessionRequest) {
  SessionRequest r = parse_session_request(
      R"({"session_id": 17, "items": ["a", 42], "timestamps": [1.5, 2], "k": 5,
          "exclude_seen": true, "allowed_items": ["x"], "forbidden_items": [7]})");
  EXPECT_EQ(r.session_id, "17");
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[1].item, "42");
  EXPECT_EQ(*r.events[0].timestamp, 1.5);
  EXPECT_EQ(*r.options.k, 5);
  EXPECT_TRUE(*r.options.exclude_seen);
  EXPECT_EQ(r.options.allowed_items->front(), "x");
  EXPECT_EQ(r.options.forbidden_items.front(), "7");
  SessionRequest m = parse_session_request(R"({"session_id": "s"})");
  EXPECT_TRUE(m.events.empty());
  EXPECT_FALSE(m.options.k);
  EXPECT_FALSE(m.options.exclude_seen);
  EXPECT_FALSE(m.options.allowed_items);
}

TEST(ServeJson, RefusesBadRequestsWithAMessage) {
  auto refuses = [](const std::string& body, const std::string& fragment) {
    try {
      parse_session_request(body);
      ADD_FAILURE() << "accepted: " << body;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 400);
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  refuses("", "empty");
  refuses("{", "malformed JSON");
  refuses("[1]", "must be a JSON object");
  refuses(R"({"items": ["a"]})", "missing field 'session_id'");
  refuses(R"({"session_id": 1.5})", "'session_id' must be a string or an integer");
  refuses(R"({"session_id": "s", "items": "a"})", "'items' must be an array");
  refuses(R"({"session_id": "s", "items": [null]})", "'items[0]'");
  refuses(R"({"session_id": "s", "k": "5"})", "'k' must be an integer");
  refuses(R"({"session_id": "s", "k": 2.5})", "'k' must be an integer");
  refuses(R"({"session_id": "s", "exclude_seen": 1})", "'exclude_seen' must be true or false");
  refuses(R"({"session_id": "s", "items": ["a"], "timestamps": [1, 2]})", "has 2 entries");
  refuses(R"({"session_id": "s", "items": ["a"], "timestamps": ["x"]})", "must be a number");
  refuses(R"({"session_id": "s", "itmes": ["a"]})", "unknown field 'itmes'");
  refuses(std::string(100, '[') + std::string(100, ']'), "nested deeper");
  try {
    parse_items_request(R"({"k": 3})");
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_NE(std::string(e.what()).find("missing field 'items'"), std::string::npos);
  }
}

TEST(ServeJson, TheDirectWriterMatchesNlohmann) {
  Recommendation r;
  r.items = {{"a\"b\\c\n\x01é", 1.5f},
             {"x", 2.1000008583068848f},
             {"y", -std::numeric_limits<float>::infinity()}};
  r.unknown_items = {"q\"", "z"};
  r.unknown_filter_items = {"f"};
  r.k = 7;
  r.exclude_seen = true;
  r.model_generation = 3;
  r.session_length = 12;
  r.new_session = true;
  const std::string sid = "s/\"1";
  json direct = json::parse(recommendation_body(r, &sid));
  json want = to_json(r);
  want["session_id"] = sid;
  want["session_length"] = 12;
  want["new_session"] = true;
  EXPECT_EQ(direct, json::parse(want.dump())) << direct.dump() << "\n" << want.dump();
  EXPECT_EQ(json::parse(recommendation_body(r, nullptr)), json::parse(to_json(r).dump()));
}

TEST(ServeJson, RoutesAreClassifiedIntoABoundedSet) {
  EXPECT_EQ(classify("POST", "/v1/events"), Route::Events);
  EXPECT_EQ(classify("GET", "/v1/events"), Route::Other);
  EXPECT_EQ(classify("GET", "/v1/sessions/abc"), Route::SessionGet);
  EXPECT_EQ(classify("DELETE", "/v1/sessions/x/y"), Route::SessionDelete);
  EXPECT_EQ(classify("GET", "/whatever"), Route::Other);
}

TEST_F(ServeHttp, EventsRecommendAndSessions) {
  auto r = post("/v1/events", R"({"session_id": "u1", "items": ["it5", "zzz"], "k": 3})");
  ASSERT_EQ(r.first, 200) << r.second.dump();
  EXPECT_EQ(r.second["session_id"], "u1");
  EXPECT_EQ(r.second["session_length"], 1);
  EXPECT_EQ(r.second["new_session"], true);
  EXPECT_EQ(r.second["unknown_items"], json::array({"zzz"}));
  EXPECT_EQ(r.second["items"][0]["item"], "it5");
  EXPECT_EQ(r.second["items"][1]["item"], "it0");
  EXPECT_EQ(r.second["items"].size(), 3u);
  r = post("/v1/events", R"({"session_id": "u1", "items": ["it7"], "exclude_seen": true, "k": 2})");
  EXPECT_EQ(r.second["items"][0]["item"], "it0");
  EXPECT_EQ(r.second["session_length"], 2);
  EXPECT_EQ(r.second["new_session"], false);
  r = post("/v1/recommend", R"({"items": ["it9"], "k": 1, "forbidden_items": ["it9"]})");
  ASSERT_EQ(r.first, 200);
  EXPECT_EQ(r.second["items"][0]["item"], "it0");
  auto g = get("/v1/sessions/u1");
  ASSERT_EQ(g.first, 200);
  EXPECT_EQ(g.second["history"], json::array({"it5", "it7"}));
  // Ids with characters that need escaping in a URL.
  ASSERT_EQ(post("/v1/events", R"({"session_id": "a/b c", "items": ["it1"]})").first, 200);
  EXPECT_EQ(get("/v1/sessions/a%2Fb%20c").first, 200);
  auto d = client_->Delete("/v1/sessions/u1");
  ASSERT_TRUE(d);
  EXPECT_EQ(json::parse(d->body)["dropped"], true);
  expect_error(get("/v1/sessions/u1"), 404, "no session 'u1'");
}

TEST_F(ServeHttp, ErrorsAre4xxJson) {
  expect_error(post("/v1/events", "{not json"), 400, "malformed JSON");
  expect_error(post("/v1/events", R"({"session_id": "s", "k": 0})"), 400, "k must be between 1");
  expect_error(post("/v1/events", R"({"session_id": "s", "k": 101})"), 400, "k must be between");
  expect_error(post("/v1/events", R"({"session_id": "s", "k": 1e300})"), 400, "'k' must be");
  expect_error(post("/v1/events", R"({"session_id": ""})"), 400, "session_id must not be empty");
  expect_error(post("/v1/recommend", R"({"items": {}})"), 400, "'items' must be an array");
  expect_error(post("/v1/recommend", std::string(5000, ' ')), 413, "larger than 4096");
  expect_error(get("/v1/nothing"), 404, "no such endpoint");
  expect_error(get("/v1/events"), 405, "not allowed");
  // The connection keeps working after errors.
  EXPECT_EQ(get("/health").first, 200);
}

TEST_F(ServeHttp, HealthModelMetricsAndReload) {
  auto h = get("/health");
  ASSERT_EQ(h.first, 200);
  EXPECT_EQ(h.second["status"], "ok");
  auto m = get("/v1/model");
  ASSERT_EQ(m.first, 200);
  EXPECT_EQ(m.second["type"], "rank");
  EXPECT_EQ(m.second["n_items"], 30);
  EXPECT_EQ(m.second["exclude_seen_default"], false);
  post("/v1/events", R"({"session_id": "x", "items": ["it1"]})");
  post("/v1/events", R"({"session_id": "x", "k": -3})");
  // No model file to reload (the model was given in memory): a 500 with the reason, and
  // the old model keeps serving.
  expect_error(post("/v1/reload", ""), 500, "still serving model generation 1");
  // A request is counted once its response has been written, which can be a moment after
  // the client has read it: poll briefly until the last request shows up.
  std::string t;
  for (int attempt = 0; attempt < 200; ++attempt) {
    auto res = client_->Get("/metrics");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    t = res->body;
    if (t.find("status=\"500\"} 1") != std::string::npos &&
        t.find("method=\"POST\",status=\"400\"} 1") != std::string::npos)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (const char* want :
       {"seqrec_http_requests_total{route=\"/v1/events\",method=\"POST\",status=\"200\"} 1",
        "seqrec_http_requests_total{route=\"/v1/events\",method=\"POST\",status=\"400\"} 1",
        "seqrec_http_request_duration_seconds_bucket{route=\"/v1/"
        "events\",method=\"POST\",le=\"+Inf\"} 2",
        "seqrec_sessions_live 1", "seqrec_session_evictions_total{reason=\"lru\"} 0",
        "seqrec_model_reloads_total{result=\"error\"} 1", "seqrec_model_items 30"})
    EXPECT_NE(t.find(want), std::string::npos) << want << "\n" << t;
}

TEST_F(ServeHttp, SurvivesFuzzing) {
  std::mt19937 rng(1234);
  const std::vector<std::string> seeds = {
      R"({"session_id": "f", "items": ["it1", "it2"], "timestamps": [1, 2], "k": 5})",
      R"({"items": ["it3"], "k": 2, "exclude_seen": false, "allowed_items": ["it1"]})",
      R"({"session_id": 5, "items": [1, 2, 3], "forbidden_items": ["it1"]})"};
  const std::vector<std::string> paths = {"/v1/events",     "/v1/recommend", "/v1/reload",
                                          "/v1/sessions/f", "/metrics",      "/nope"};
  const std::string alphabet = "{}[]\":,0123456789.eE+-truefalsnul \\\x01\xff\xc3\xa9itkms_";
  int answered = 0;
  for (int i = 0; i < 1500; ++i) {
    std::string body;
    switch (rng() % 4) {
      case 0:  // random bytes
        for (size_t n = rng() % 200; n > 0; --n) body.push_back(static_cast<char>(rng() % 256));
        break;
      case 1:  // random characters of JSON
        for (size_t n = rng() % 200; n > 0; --n) body.push_back(alphabet[rng() % alphabet.size()]);
        break;
      default: {  // a valid request with a few bytes flipped, cut or duplicated
        body = seeds[rng() % seeds.size()];
        for (int m = 1 + static_cast<int>(rng() % 4); m > 0 && !body.empty(); --m) {
          const size_t p = rng() % body.size();
          switch (rng() % 3) {
            case 0:
              body[p] = alphabet[rng() % alphabet.size()];
              break;
            case 1:
              body.erase(p, 1 + rng() % 5);
              break;
            default:
              body.insert(p, body.substr(p, rng() % 20));
              break;
          }
        }
      }
    }
    const std::string& path = paths[rng() % paths.size()];
    httplib::Result res = (rng() % 5 == 0) ? client_->Get(path.c_str())
                                           : client_->Post(path.c_str(), body, "application/json");
    ASSERT_TRUE(res) << "no answer to " << path << " "
                     << json(body).dump(-1, ' ', false, json::error_handler_t::replace);
    ++answered;
    const int st = res->status;
    EXPECT_TRUE(st == 200 || st == 400 || st == 404 || st == 405 || st == 413 || st == 500) << st;
    if (path != "/metrics" || st != 200)
      EXPECT_FALSE(json::parse(res->body, nullptr, false).is_discarded()) << res->body;
  }
  EXPECT_EQ(answered, 1500);
  EXPECT_EQ(get("/health").first, 200);
}

namespace {

using seqrec_test::get;
using seqrec_test::post;

/// The routes on raw sockets (see unit/raw_http_client.hpp), `threads` workers.
class ServeHttpRaw : public ::testing::Test {
 protected:
  void start(int threads, int64_t max_body = 4096) {
    rec_ = make_recommender();
    HttpOptions o;
    o.port = 0;
    o.threads = threads;
    o.max_body = max_body;
    o.quiet = true;
    server_ = std::make_unique<HttpServer>(rec_, o);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
  }
  RawResponse ask(const std::string& request, bool head = false) {
    RawClient c(port_);
    EXPECT_TRUE(c.send(request));
    auto r = c.response(5000ms, head);
    EXPECT_TRUE(r) << request;
    return r ? *r : RawResponse();
  }
  void expect_error(const RawResponse& r, int status, const std::string& fragment) {
    EXPECT_EQ(r.status, status) << r.body;
    const json j = r.body_json();
    ASSERT_TRUE(j.is_object() && j.contains("error")) << r.body;
    EXPECT_EQ(j["error"]["status"], status);
    EXPECT_NE(j["error"]["message"].get<std::string>().find(fragment), std::string::npos) << r.body;
    EXPECT_EQ(r.headers.at("content-type"), "application/json");
  }

  std::shared_ptr<Recommender> rec_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  int port_ = 0;
};

TEST_F(ServeHttpRaw, ManyMoreConnectionsThanWorkers) {
  start(2);
  constexpr int kConns = 200;
  std::vector<std::unique_ptr<RawClient>> cs;
  for (int i = 0; i < kConns; ++i) {
    cs.push_back(std::make_unique<RawClient>(port_));
    ASSERT_TRUE(cs.back()->connected());
  }
  for (int round = 0; round < 2; ++round) {  // twice: the connections are kept alive
    for (int i = 0; i < kConns; ++i)
      ASSERT_TRUE(cs[static_cast<size_t>(i)]->send(
          post("/v1/events",
               R"({"session_id": "c)" + std::to_string(i) + R"(", "items": ["it3"], "k": 2})")));
    for (int i = 0; i < kConns; ++i) {
      auto r = cs[static_cast<size_t>(i)]->response();
      ASSERT_TRUE(r) << "connection " << i << " round " << round;
      ASSERT_EQ(r->status, 200) << r->body;
      const json j = r->body_json();
      EXPECT_EQ(j["session_id"], "c" + std::to_string(i));
      EXPECT_EQ(j["session_length"], round + 1);
    }
  }
}

TEST_F(ServeHttpRaw, ErrorsKeepTheirStatusAndJsonBody) {
  start(2);
  expect_error(ask(get("/nothing")), 404, "no such endpoint: GET /nothing");
  expect_error(ask(get("/v1/sessions/")), 404, "/v1/sessions/ID");
  RawResponse r = ask("PUT /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}");
  expect_error(r, 405, "method PUT is not allowed on /v1/events");
  EXPECT_EQ(r.headers["allow"], "POST");
  expect_error(ask("BREW /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), 501,
               "method BREW is not implemented");
  expect_error(ask("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), 400,
               "this POST needs a JSON body");
  expect_error(ask(post("/v1/events", "")), 400, "the request body is empty");
  expect_error(ask(post("/v1/events", std::string(5000, ' '))), 413, "larger than 4096");
  expect_error(ask("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n"), 414, "longer than");
  expect_error(ask("GET / HTTP/1.1\r\nX: " + std::string(40000, 'a') + "\r\n\r\n"), 431,
               "larger than");
  expect_error(ask("GET /health HTTP/1.1\r\nContent-Length: x\r\n\r\n"), 400,
               "invalid Content-Length");
  expect_error(ask("hello\r\n\r\n"), 400, "malformed request line");
  expect_error(ask("GET /v1/sessions/%G1 HTTP/1.1\r\n\r\n"), 400, "percent-encoding");
  // A body-less POST /v1/reload reaches the reload (which fails: no model file here).
  expect_error(ask("POST /v1/reload HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), 500,
               "still serving model generation 1");
}

TEST_F(ServeHttpRaw, ChunkedHeadQueryAndPercentDecoding) {
  start(2);
  const std::string body = R"({"session_id": "a/b c", "items": ["it4"], "k": 1})";
  RawResponse r =
      ask("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
          "application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
          [&] {
            char hex[16];
            std::snprintf(hex, sizeof hex, "%zx", body.size() - 10);
            return std::string(hex) + "\r\n" + body.substr(0, body.size() - 10) + "\r\na\r\n" +
                   body.substr(body.size() - 10) + "\r\n0\r\n\r\n";
          }());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body_json()["session_id"], "a/b c");
  r = ask(get("/v1/sessions/a%2Fb%20c?fields=all"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body_json()["history"], json::array({"it4"}));
  // HEAD: the GET answer's headers, no body (the next response on the connection parses).
  RawClient c(port_);
  ASSERT_TRUE(c.send("HEAD /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + get("/health")));
  auto h = c.response(5000ms, true);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_GT(std::stoi(h->headers["content-length"]), 0);
  auto g = c.response();
  ASSERT_TRUE(g);
  EXPECT_EQ(g->body_json()["status"], "ok");
  r = ask("HEAD /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", true);
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers["allow"], "POST");
}

TEST_F(ServeHttpRaw, ExpectContinueWithARealClientFlow) {
  start(2);
  RawClient c(port_);
  const std::string body = R"({"items": ["it1"], "k": 1})";
  ASSERT_TRUE(
      c.send("POST /v1/recommend HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
             "application/json\r\nExpect: 100-continue\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n\r\n"));
  auto interim = c.response();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(c.send(body));
  auto r = c.response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->body_json()["items"][0]["item"], "it1");
}

TEST_F(ServeHttpRaw, ParseErrorsAreCountedInTheMetrics) {
  start(2);
  ask("hello\r\n\r\n");
  ask(get("/health"));
  // A request is counted once its response is written, which can be just after the client
  // has read it: poll until both counts are in.
  const std::string bad = "route=\"other\",method=\"other\",status=\"400\"} 1";
  const std::string health = "route=\"/health\",method=\"GET\",status=\"200\"} 1";
  std::string text;
  for (int i = 0; i < 200; ++i) {
    text = ask(get("/metrics")).body;
    if (text.find(bad) != std::string::npos && text.find(health) != std::string::npos) break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_NE(text.find(bad), std::string::npos) << text;
  EXPECT_NE(text.find(health), std::string::npos) << text;
}

}  // namespace

// Who may ask what of the server (src/serve/http/access.*, docs/http-api.md#threat-model):
// the Host allow-list against DNS rebinding, JSON-only bodies and the refusal of cross-site
// requests against web pages that post to the server, the bearer token of the admin
// endpoints, and the limits on reloads (one at a time, a minimum interval) with the
// reload's timing fields. The checks alone, then on a running server over raw sockets.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "seqrec/error.hpp"
#include "seqrec/model.hpp"
#include "seqrec/recommender.hpp"
#include "seqrec/training.hpp"
#include "serve/http/access.hpp"
#include "serve/http/server.hpp"
#include "unit/raw_http_client.hpp"

using namespace seqrec;
using namespace seqrec::serve::http;
using nlohmann::json;
using namespace std::chrono_literals;
using seqrec_test::RawClient;
using seqrec_test::RawResponse;
namespace fs = std::filesystem;

// ---------------------------------------------------------------- the checks alone

TEST(HttpAccess, SplitsHostAndPort) {
  std::string h, p;
  ASSERT_TRUE(split_host_port("LocalHost:8080", &h, &p));
  EXPECT_EQ(h, "localhost");
  EXPECT_EQ(p, "8080");
  ASSERT_TRUE(split_host_port("[::1]:9", &h, &p));
  EXPECT_EQ(h, "[::1]");
  EXPECT_EQ(p, "9");
  ASSERT_TRUE(split_host_port("127.0.0.1", &h, &p));
  EXPECT_EQ(p, "");
  for (const char* bad : {"", ":80", "a b", "host:", "host:8x", "[::1", "[zz]", "a:1:2", "h/x"})
    EXPECT_FALSE(split_host_port(bad, &h, &p)) << bad;
}

TEST(HttpAccess, TheLoopbackAllowListRefusesRebindingNames) {
  const HostAllowList a = HostAllowList::loopback();
  for (const char* ok : {"localhost", "localhost:8080", "LOCALHOST:1", "127.0.0.1", "127.0.0.1:80",
                         "[::1]", "[::1]:8080"})
    EXPECT_TRUE(a.allows(ok)) << ok;
  for (const char* no : {"rebind.attacker.example", "rebind.attacker.example:8080",
                         "127.0.0.1.nip.io", "localhost.attacker.example", "localhost.", "",
                         "[::2]", "127.0.0.2", "0.0.0.0", "localhost:8080:1"})
    EXPECT_FALSE(a.allows(no)) << no;
  EXPECT_FALSE(a.allows_any());
  EXPECT_EQ(a.text(), "localhost, 127.0.0.1, [::1]");
}

TEST(HttpAccess, AllowListEntries) {
  const HostAllowList a = HostAllowList::parse(" api.example.com, *.svc.local ,internal:9000");
  EXPECT_TRUE(a.allows("api.example.com"));
  EXPECT_TRUE(a.allows("API.example.com:443"));
  EXPECT_TRUE(a.allows("seqrec.svc.local:8080"));
  EXPECT_TRUE(a.allows("a.b.svc.local"));
  EXPECT_FALSE(a.allows("svc.local"));  // the wildcard is for subdomains
  EXPECT_FALSE(a.allows("evilsvc.local"));
  EXPECT_TRUE(a.allows("internal:9000"));
  EXPECT_FALSE(a.allows("internal:9001"));
  EXPECT_FALSE(a.allows("internal"));
  EXPECT_FALSE(a.allows("localhost"));
  EXPECT_TRUE(HostAllowList::parse("*").allows("anything.example"));
  EXPECT_TRUE(HostAllowList().allows_any());
  for (const char* bad : {"", " , ", "a b", "http://x", "*.", "*.[::1]", "x:y"}) {
    try {
      HostAllowList::parse(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("allowed_hosts"), std::string::npos) << e.what();
    }
  }
}

TEST(HttpAccess, OnlyJsonMediaTypes) {
  for (const char* ok : {"application/json", "Application/JSON", "application/json; charset=utf-8",
                         "application/json;charset=UTF-8", "application/json; charset=\"utf-8\""})
    EXPECT_TRUE(is_json_media_type(ok)) << ok;
  // The three types a browser may send to another origin without a preflight, and others.
  for (const char* no :
       {"", "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x", "application/json; charset=latin1", "application/jsonx",
        "application/json; a=b", "application/json; charset=utf-8; a=b", "text/json",
        "application/json, text/plain"})
    EXPECT_FALSE(is_json_media_type(no)) << no;
}

TEST(HttpAccess, CrossSiteAsTheBrowserTellsIt) {
  HttpRequest r;
  r.host = "localhost:8080";
  r.host_count = 1;
  EXPECT_FALSE(cross_site(r));  // curl, scripts: neither header
  r.sec_fetch_site = "cross-site";
  EXPECT_TRUE(cross_site(r));
  r.sec_fetch_site = "same-site";  // another port of the same host is another origin
  EXPECT_TRUE(cross_site(r));
  r.sec_fetch_site = "same-origin";
  EXPECT_FALSE(cross_site(r));
  r.sec_fetch_site = "none";  // typed into the address bar
  EXPECT_FALSE(cross_site(r));
  r.sec_fetch_site.clear();
  r.origin = "http://localhost:8080";
  EXPECT_FALSE(cross_site(r));
  r.origin = "http://localhost:3000";
  EXPECT_TRUE(cross_site(r));
  r.origin = "https://attacker.example";
  EXPECT_TRUE(cross_site(r));
  r.origin = "null";
  EXPECT_TRUE(cross_site(r));
  r.host = "localhost";
  r.origin = "http://LOCALHOST:80";
  EXPECT_FALSE(cross_site(r));
}

TEST(HttpAccess, BearerTokens) {
  EXPECT_TRUE(bearer_matches("Bearer s3cr3t-token", "s3cr3t-token"));
  EXPECT_TRUE(bearer_matches("bearer   s3cr3t-token ", "s3cr3t-token"));
  EXPECT_FALSE(bearer_matches("Bearer s3cr3t-tokeN", "s3cr3t-token"));
  EXPECT_FALSE(bearer_matches("Bearer s3cr3t-toke", "s3cr3t-token"));
  EXPECT_FALSE(bearer_matches("Bearer s3cr3t-token2", "s3cr3t-token"));
  EXPECT_FALSE(bearer_matches("Basic s3cr3t-token", "s3cr3t-token"));
  EXPECT_FALSE(bearer_matches("Bearers3cr3t-token", "s3cr3t-token"));
  EXPECT_FALSE(bearer_matches("", "s3cr3t-token"));
  EXPECT_FALSE(bearer_matches("Bearer ", ""));
}

namespace {

fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::path(::testing::TempDir()) / (name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string write(const fs::path& p, const std::string& text, mode_t mode) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
  ::chmod(p.c_str(), mode);
  return p.string();
}

}  // namespace

TEST(HttpAccess, ApiKeyFile) {
  const fs::path d = temp_dir("seqrec_api_key");
  std::vector<std::string> w;
  EXPECT_EQ(read_api_key_file(write(d / "k", "  0123456789abcdef0123\r\nsecond line\n", 0600), &w),
            "0123456789abcdef0123");
  EXPECT_TRUE(w.empty()) << w.front();
  // Readable by others, short: read, with advice.
  EXPECT_EQ(read_api_key_file(write(d / "k2", "abc", 0644), &w), "abc");
  ASSERT_EQ(w.size(), 2u);
  EXPECT_NE(w[0].find("readable by other users (mode 0644)"), std::string::npos) << w[0];
  EXPECT_NE(w[1].find("only 3 characters"), std::string::npos) << w[1];
  auto refused = [&](const std::string& path, const std::string& fragment) {
    try {
      read_api_key_file(path, nullptr);
      ADD_FAILURE() << "accepted " << path;
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(path), std::string::npos) << m;
      EXPECT_NE(m.find(fragment), std::string::npos) << m;
    }
  };
  refused(write(d / "empty", "", 0600), "empty");
  refused(write(d / "blank", " \t\n0123456789abcdef\n", 0600), "empty");
  refused(write(d / "spaces", "0123456789 abcdef\n", 0600), "space");
  refused(write(d / "utf8", "0123456789abcdef\xc3\xa9\n", 0600), "non-ASCII");
  refused((d / "missing").string(), "cannot read");
  refused(d.string(), "directory");
  fs::remove_all(d);
}

// ---------------------------------------------------------------- on a running server

namespace {

/// Item i scores n - i plus 100 per occurrence in the prefix.
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

RecommenderOptions quiet() {
  RecommenderOptions o;
  o.sweep_interval_seconds = 0;
  return o;
}

std::shared_ptr<Recommender> in_memory() {
  ModelBundle b;
  b.model = std::make_unique<RankModel>(10);
  for (int32_t i = 0; i < 10; ++i) b.items.add("it" + std::to_string(i));
  b.meta = {{"protocol", "session"}};
  return std::make_shared<Recommender>(std::move(b), quiet());
}

/// A pop model file of 5 items p0..p4.
void save_pop(const std::string& path) {
  ModelBundle b;
  for (int i = 0; i < 5; ++i) b.items.add("p" + std::to_string(i));
  SequenceSet s;
  s.push("s0", std::vector<int32_t>{0, 1, 1});
  s.push("s1", std::vector<int32_t>{1, 2});
  b.model = create_model("pop", default_config("pop"));
  FitContext ctx;
  ctx.progress = false;
  b.model->fit(s, 5, ctx);
  b.meta = {{"protocol", "session"}};
  save_model(path, b);
}

const std::string kHost = "Host: 127.0.0.1\r\n";
const std::string kJsonType = "Content-Type: application/json\r\n";

/// A request of `method` on `path` with the header lines `headers` (each ending in CRLF)
/// and `body` (with its Content-Length when not empty).
std::string request(const std::string& method, const std::string& path, const std::string& headers,
                    const std::string& body = "") {
  return method + " " + path + " HTTP/1.1\r\n" + headers +
         (body.empty() && method != "POST"
              ? ""
              : "Content-Length: " + std::to_string(body.size()) + "\r\n") +
         "\r\n" + body;
}

class ServeAccess : public ::testing::Test {
 protected:
  void start(HttpOptions o, std::shared_ptr<Recommender> rec = in_memory()) {
    rec_ = std::move(rec);
    o.port = 0;
    o.threads = 2;
    o.quiet = true;
    server_ = std::make_unique<HttpServer>(rec_, o);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
  }
  RawResponse ask(const std::string& bytes) {
    RawClient c(port_);
    EXPECT_TRUE(c.send(bytes));
    auto r = c.response(10000ms);
    EXPECT_TRUE(r) << bytes;
    return r ? *r : RawResponse();
  }
  /// A JSON error of `status` whose message holds `fragment`.
  static void expect_error(const RawResponse& r, int status, const std::string& fragment) {
    EXPECT_EQ(r.status, status) << r.body;
    const json j = r.body_json();
    ASSERT_TRUE(j.is_object() && j.contains("error")) << r.body;
    EXPECT_EQ(j["error"]["status"], status);
    EXPECT_NE(j["error"]["message"].get<std::string>().find(fragment), std::string::npos) << r.body;
  }
  static void expect_no_cors(const RawResponse& r) {
    for (const auto& [name, value] : r.headers)
      EXPECT_NE(name.rfind("access-control-", 0), 0u) << name << ": " << value;
  }

  std::shared_ptr<Recommender> rec_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  int port_ = 0;
};

const std::string kEvent = R"({"session_id": "victim", "items": ["it3"], "k": 2})";

}  // namespace

TEST_F(ServeAccess, DnsRebindingIsRefusedOnLoopback) {
  start({});
  EXPECT_TRUE(server_->loopback());
  EXPECT_EQ(server_->allowed_hosts(), "localhost, 127.0.0.1, [::1]");
  ASSERT_EQ(ask(request("POST", "/v1/events", kHost + kJsonType, kEvent)).status, 200);
  const std::string port = std::to_string(port_);
  for (const std::string host : {"localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port}) {
    RawResponse r = ask(request("GET", "/v1/sessions/victim", "Host: " + host + "\r\n"));
    EXPECT_EQ(r.status, 200) << host << " " << r.body;
  }
  // A page of rebind.attacker.example whose name now points at 127.0.0.1.
  RawResponse r =
      ask(request("GET", "/v1/sessions/victim", "Host: rebind.attacker.example:" + port + "\r\n"));
  expect_error(r, 421, "does not answer for the host 'rebind.attacker.example");
  EXPECT_EQ(r.body.find("it3"), std::string::npos);
  expect_error(ask(request("POST", "/v1/reload", "Host: rebind.attacker.example\r\n")), 421,
               "host");
  expect_error(ask(request("GET", "/health", "Host: 127.0.0.1.nip.io\r\n")), 421, "host");
  // An absolute-form target names the host instead of the Host field (RFC 9112 §3.2.2).
  expect_error(ask(request("GET", "http://rebind.attacker.example/v1/sessions/victim", kHost)), 421,
               "rebind.attacker.example");
  // HTTP/1.1 needs exactly one Host; HTTP/1.0 may go without.
  expect_error(ask("GET /health HTTP/1.1\r\n\r\n"), 400, "needs a Host header");
  expect_error(ask("GET /health HTTP/1.1\r\nHost: localhost\r\nHost: evil\r\n\r\n"), 400,
               "more than one Host");
  RawClient c(port_);
  ASSERT_TRUE(c.send("GET /health HTTP/1.0\r\n\r\n"));
  auto h = c.response();
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
}

TEST_F(ServeAccess, AllowedHostsAreTheOperatorsList) {
  HttpOptions o;
  o.allowed_hosts = "api.example.com, *.svc.local";
  start(o);
  EXPECT_EQ(ask(request("GET", "/health", "Host: api.example.com:8080\r\n")).status, 200);
  EXPECT_EQ(ask(request("GET", "/health", "Host: seqrec.svc.local\r\n")).status, 200);
  expect_error(ask(request("GET", "/health", kHost)), 421, "127.0.0.1");
  EXPECT_THROW(
      {
        HttpOptions bad;
        bad.allowed_hosts = "a b";
        HttpServer s(rec_, bad);
      },
      InputError);
}

TEST_F(ServeAccess, BeyondLoopbackAnyHostUnlessListed) {
  HttpOptions o;
  o.host = "0.0.0.0";
  start(o);
  EXPECT_FALSE(server_->loopback());
  EXPECT_EQ(server_->allowed_hosts(), "*");
  EXPECT_EQ(ask(request("GET", "/health", "Host: recs.example.com\r\n")).status, 200);
}

TEST_F(ServeAccess, JsonBodiesOnlyAndNoCors) {
  start({});
  // What a page of another origin can send without a preflight: refused before the endpoint.
  for (const std::string type : {"text/plain", "text/plain;charset=UTF-8",
                                 "application/x-www-form-urlencoded", "multipart/form-data"}) {
    for (const std::string path : {"/v1/events", "/v1/recommend"}) {
      RawResponse r = ask(request("POST", path, kHost + "Content-Type: " + type + "\r\n", kEvent));
      expect_error(r, 415, "must be JSON");
      EXPECT_EQ(r.headers["accept-post"], "application/json");
      expect_no_cors(r);
    }
  }
  expect_error(ask(request("POST", "/v1/events", kHost, kEvent)), 415,
               "send Content-Type: application/json");
  EXPECT_FALSE(rec_->session_info("victim").has_value());  // nothing was written
  for (const std::string type : {"application/json", "application/json; charset=utf-8"}) {
    RawResponse r = ask(
        request("POST", "/v1/events",
                kHost + "Content-Type: " + type + "\r\n" + "Origin: http://127.0.0.1\r\n", kEvent));
    EXPECT_EQ(r.status, 200) << r.body;
    expect_no_cors(r);
  }
  // A reload takes no body; one that is sent must be JSON too.
  expect_error(ask(request("POST", "/v1/reload", kHost + "Content-Type: text/plain\r\n", "x")), 415,
               "must be JSON");
  // No preflight is granted: no Access-Control-Allow-* in the answer.
  RawResponse pre = ask(request("OPTIONS", "/v1/events",
                                kHost + "Origin: http://attacker.example\r\n"
                                        "Access-Control-Request-Method: POST\r\n"
                                        "Access-Control-Request-Headers: content-type\r\n"));
  EXPECT_GE(pre.status, 400);
  expect_no_cors(pre);
}

TEST_F(ServeAccess, CrossSiteWritesAreRefused) {
  start({});
  // A no-CORS form post from a page on another site: the browser says where it comes from.
  expect_error(
      ask(request("POST", "/v1/reload",
                  kHost + "Origin: http://attacker.example\r\nSec-Fetch-Site: cross-site\r\n")),
      403, "cross-site request refused");
  expect_error(ask(request("POST", "/v1/reload", kHost + "Origin: http://attacker.example\r\n")),
               403, "cross-site");
  expect_error(ask(request("POST", "/v1/reload", kHost + "Origin: null\r\n")), 403, "cross-site");
  expect_error(ask(request("POST", "/v1/events",
                           kHost + kJsonType + "Sec-Fetch-Site: same-site\r\n", kEvent)),
               403, "cross-site");
  expect_error(
      ask(request("DELETE", "/v1/sessions/victim", kHost + "Origin: http://localhost:3000\r\n")),
      403, "cross-site");
  // The same origin, or no browser at all: through to the endpoint (which fails here: the
  // model was given in memory, so there is no file to reload).
  expect_error(ask(request("POST", "/v1/reload",
                           "Host: 127.0.0.1:" + std::to_string(port_) +
                               "\r\nOrigin: http://127.0.0.1:" + std::to_string(port_) + "\r\n")),
               500, "still serving");
  expect_error(ask(request("POST", "/v1/reload", kHost + "Sec-Fetch-Site: same-origin\r\n")), 429,
               "reloads are at least 1 s apart");
}

TEST_F(ServeAccess, BearerTokenOnTheAdminEndpoints) {
  HttpOptions o;
  o.api_key = "0123456789abcdef-token";
  o.reload_min_interval_seconds = 0;
  start(o);
  const std::string good = "Authorization: Bearer 0123456789abcdef-token\r\n";
  const std::string wrong = "Authorization: Bearer 0123456789abcdef-tokeN\r\n";
  ASSERT_EQ(ask(request("POST", "/v1/events", kHost + kJsonType, kEvent)).status, 200);
  const std::vector<std::pair<std::string, std::string>> admin = {{"GET", "/v1/model"},
                                                                  {"GET", "/metrics"},
                                                                  {"POST", "/v1/reload"},
                                                                  {"GET", "/v1/sessions/victim"},
                                                                  {"HEAD", "/v1/sessions/victim"},
                                                                  {"DELETE", "/v1/sessions/x"}};
  for (const auto& [method, path] : admin) {
    if (method == "HEAD") continue;  // no body to check; below
    RawResponse r = ask(request(method, path, kHost));
    expect_error(r, 401, "needs the API key");
    EXPECT_EQ(r.headers["www-authenticate"], "Bearer realm=\"seqrec\"") << path;
    r = ask(request(method, path, kHost + wrong));
    expect_error(r, 401, "the API key is wrong");
    EXPECT_EQ(r.headers["www-authenticate"], "Bearer realm=\"seqrec\", error=\"invalid_token\"");
    r = ask(request(method, path, kHost + good));
    EXPECT_NE(r.status, 401) << method << " " << path << " " << r.body;
  }
  RawClient head(port_);
  ASSERT_TRUE(head.send(request("HEAD", "/v1/sessions/victim", kHost)));
  auto h = head.response(5000ms, true);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 401);
  RawResponse s = ask(request("GET", "/v1/sessions/victim",
                              kHost + "Authorization: bearer "
                                      "0123456789abcdef-token\r\n"));
  EXPECT_EQ(s.status, 200) << s.body;
  EXPECT_EQ(s.body_json()["history"], json::array({"it3"}));
  // Live traffic and the health check stay open in the default scope.
  EXPECT_EQ(
      ask(request("POST", "/v1/recommend", kHost + kJsonType, R"({"items": ["it1"]})")).status,
      200);
  EXPECT_EQ(ask(request("GET", "/health", kHost)).status, 200);
  // SIGHUP's reload needs no key (it fails here only because there is no file).
  EXPECT_THROW(server_->reload(), Error);
}

TEST_F(ServeAccess, ApiKeyScopeAll) {
  HttpOptions o;
  o.api_key = "0123456789abcdef-token";
  o.api_key_scope = HttpOptions::ApiKeyScope::All;
  start(o);
  expect_error(ask(request("POST", "/v1/events", kHost + kJsonType, kEvent)), 401, "API key");
  expect_error(ask(request("POST", "/v1/recommend", kHost + kJsonType, R"({"items": []})")), 401,
               "API key");
  EXPECT_EQ(
      ask(request("POST", "/v1/events",
                  kHost + kJsonType + "Authorization: Bearer 0123456789abcdef-token\r\n", kEvent))
          .status,
      200);
  EXPECT_EQ(ask(request("GET", "/health", kHost)).status, 200);
}

TEST_F(ServeAccess, ReloadsAreRateLimitedAndTimed) {
  const fs::path d = temp_dir("seqrec_reload_limit");
  const std::string path = (d / "pop.seqrec").string();
  save_pop(path);
  HttpOptions o;
  o.reload_min_interval_seconds = 3600;
  start(o, std::make_shared<Recommender>(path, quiet()));
  RawResponse r = ask(request("POST", "/v1/reload", kHost));
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.body_json();
  EXPECT_EQ(j["generation"], 2);
  // The time to read and check the file, and the swap; their sum is `seconds`.
  ASSERT_TRUE(j["load_seconds"].is_number() && j["swap_seconds"].is_number()) << r.body;
  EXPECT_GT(j["load_seconds"].get<double>(), 0.0);
  EXPECT_GE(j["swap_seconds"].get<double>(), 0.0);
  EXPECT_NEAR(j["seconds"].get<double>(),
              j["load_seconds"].get<double>() + j["swap_seconds"].get<double>(), 1e-9);
  // Too soon: 429 with the time to wait, and the model is not loaded again.
  r = ask(request("POST", "/v1/reload", kHost));
  expect_error(r, 429, "reloads are at least 3600 s apart");
  const int wait = std::stoi(r.headers.at("retry-after"));
  EXPECT_GT(wait, 3000);
  EXPECT_LE(wait, 3600);
  EXPECT_EQ(rec_->stats().model_generation, 2u);
  // SIGHUP is the operator's: never refused.
  EXPECT_EQ(server_->reload().generation, 3u);
  expect_error(ask(request("POST", "/v1/reload", kHost)), 429, "apart");
  fs::remove_all(d);
}

TEST_F(ServeAccess, OneReloadAtATime) {
  // The model file becomes a FIFO: a reload blocks opening it until the test opens the
  // other end, so a second reload is certain to arrive while the first runs.
  const fs::path d = temp_dir("seqrec_reload_busy");
  const std::string path = (d / "pop.seqrec").string();
  save_pop(path);
  HttpOptions o;
  o.reload_min_interval_seconds = 0;
  start(o, std::make_shared<Recommender>(path, quiet()));
  fs::remove(path);
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  // Opening the writing end (once the reload waits at the other) lets the reload go on; it
  // then finds no model file there. Done however the test ends, so that stop() never
  // waits on a blocked reload.
  struct Unblock {
    std::string path;
    bool done = false;
    void operator()() {
      for (int i = 0; i < 1000 && !done; ++i) {
        const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
          ::close(fd);
          done = true;
        } else {
          std::this_thread::sleep_for(10ms);
        }
      }
    }
    ~Unblock() { (*this)(); }
  } unblock{path};
  RawClient a(port_), b(port_);
  ASSERT_TRUE(a.send(request("POST", "/v1/reload", kHost)));
  ASSERT_TRUE(b.send(request("POST", "/v1/reload", kHost)));
  // One of them runs (blocked on the FIFO); the other is refused at once.
  std::optional<RawResponse> refused;
  RawClient* waiting = nullptr;
  for (int i = 0; i < 100 && !refused; ++i) {
    if ((refused = a.response(50ms)))
      waiting = &b;
    else if ((refused = b.response(50ms)))
      waiting = &a;
  }
  ASSERT_TRUE(refused) << "no reload was refused";
  expect_error(*refused, 409, "a reload is already running");
  EXPECT_GE(std::stoi(refused->headers.at("retry-after")), 1);
  unblock();
  EXPECT_TRUE(unblock.done);
  auto done = waiting->response(10000ms);
  ASSERT_TRUE(done);
  expect_error(*done, 500, "still serving model generation 1");
  // Over: the next reload is accepted.
  fs::remove(path);
  save_pop(path);
  EXPECT_EQ(ask(request("POST", "/v1/reload", kHost)).status, 200);
  fs::remove_all(d);
}

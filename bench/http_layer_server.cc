// The HTTP layer of `seqrec serve` alone, for bench/http_layer.sh: a server whose handler
// does no work (it answers every request with a fixed 600-byte JSON body, about the size
// of a top-20 recommendation), on our epoll server (src/serve/http/event_server.*) or, for
// comparison, on cpp-httplib's thread-per-connection server that `seqrec serve` used
// before. What a client measures against it is the cost of the HTTP layer: reading,
// parsing, the hand-off to a worker and back, and writing.
//
// Usage: http_layer_server epoll|httplib THREADS PORT_FILE   (stops on SIGINT/SIGTERM)
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "serve/http/event_server.hpp"

#ifdef WITH_HTTPLIB
#include <httplib.h>
#endif

namespace {

std::string body() {
  std::string b = "{\"items\":[";
  for (int i = 0; i < 20; ++i)
    b += std::string(i ? "," : "") + "{\"item\":\"2145" + std::to_string(10000 + i) +
         "\",\"score\":0.123456}";
  return b + "],\"k\":20}";
}

void write_port(const char* file, int port) {
  std::ofstream(std::string(file) + ".tmp") << port << "\n";
  std::rename((std::string(file) + ".tmp").c_str(), file);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s epoll|httplib THREADS PORT_FILE\n", argv[0]);
    return 2;
  }
  const std::string kind = argv[1];
  const int threads = std::atoi(argv[2]);
  const std::string answer = body();
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  if (kind == "epoll") {
    using namespace seqrec::serve::http;
    HttpOptions o;
    o.port = 0;
    o.threads = threads;
    EventServer s(
        [&](const HttpRequest&) {
          HttpResponse r;
          r.body = answer;
          return r;
        },
        nullptr, o);
    write_port(argv[3], s.bind());
    std::thread stopper([&] {
      int sig;
      sigwait(&sigs, &sig);
      s.stop();
    });
    s.run();
    stopper.join();
    return 0;
  }
#ifdef WITH_HTTPLIB
  if (kind == "httplib") {
    httplib::Server s;
    s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    s.set_tcp_nodelay(true);
    s.set_keep_alive_max_count(1000000);
    s.Post(".*", [&](const httplib::Request&, httplib::Response& res) {
      res.set_content(answer, "application/json");
    });
    s.Get(".*", [&](const httplib::Request&, httplib::Response& res) {
      res.set_content(answer, "application/json");
    });
    const int port = s.bind_to_any_port("127.0.0.1");
    write_port(argv[3], port);
    std::thread stopper([&] {
      int sig;
      sigwait(&sigs, &sig);
      s.stop();
    });
    s.listen_after_bind();
    stopper.join();
    return 0;
  }
#endif
  std::fprintf(stderr, "unknown server kind '%s'\n", kind.c_str());
  return 2;
}

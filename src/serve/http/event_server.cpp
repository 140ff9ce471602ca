#include "serve/http/event_server.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

#include "seqrec/error.hpp"
#include "serve/http/json_api.hpp"

namespace seqrec::serve::http {

namespace {

using Clock = std::chrono::steady_clock;

/// How long a connection that is being closed after a response keeps draining what the
/// client still sends (so that the client reads the answer instead of a reset).
constexpr double kLingerSeconds = 2.0;
/// How long accepting pauses when the process runs out of file descriptors.
constexpr auto kAcceptPause = std::chrono::milliseconds(100);

char kListenTag, kWakeTag;  // epoll data of the listening socket and the eventfd

std::string errno_text(int e) {
  return std::system_category().message(e);
}

Clock::duration seconds_to_duration(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

const char* reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
  }
}

/// `Date: ...` (RFC 9110 §6.6.1), formatted once a second per thread.
void append_date(std::string& out) {
  thread_local time_t cached = -1;
  thread_local char line[64];
  thread_local int len = 0;
  const time_t now = std::time(nullptr);
  if (now != cached) {
    static const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::tm t{};
    gmtime_r(&now, &t);
    len = std::snprintf(line, sizeof line, "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
                        days[t.tm_wday % 7], t.tm_mday, months[t.tm_mon % 12], t.tm_year + 1900,
                        t.tm_hour, t.tm_min, t.tm_sec);
    cached = now;
  }
  out.append(line, static_cast<size_t>(len));
}

void format_response(std::string& out, const HttpResponse& r, bool head, bool close, bool http10) {
  out.clear();
  out.reserve(200 + r.content_type.size() + (head ? 0 : r.body.size()));
  out += "HTTP/1.1 ";
  out += std::to_string(r.status);
  out += ' ';
  out += reason_phrase(r.status);
  out += "\r\nContent-Type: ";
  out += r.content_type;
  out += "\r\nContent-Length: ";
  out += std::to_string(r.body.size());
  out += "\r\n";
  if (!r.allow.empty()) {
    out += "Allow: ";
    out += r.allow;
    out += "\r\n";
  }
  for (const auto& [name, value] : r.headers) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  if (close)
    out += "Connection: close\r\n";
  else if (http10)
    out += "Connection: keep-alive\r\n";
  append_date(out);
  out += "\r\n";
  if (!head) out += r.body;
}

std::string address_text(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, buf, sizeof buf);
  else if (ss.ss_family == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, buf, sizeof buf);
  return buf;
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

enum Timer { kIdleTimer, kReadTimer, kWriteTimer, kLingerTimer, kTimers };

/// One client connection. Owned by the I/O thread, except while a worker runs its request
/// (state Busy): then only that worker touches it, until it hands it back.
struct Conn {
  enum class State { Idle, Reading, Busy, Writing, Lingering };

  explicit Conn(const HttpLimits& limits) : parser(limits) {}

  int fd = -1;
  std::string remote;
  std::string in;  // received, not yet parsed
  RequestParser parser;
  HttpRequest req;  // the request being answered
  std::string out;  // the response being written
  size_t out_off = 0;
  State state = State::Idle;
  bool eof = false;            // the client has shut down its sending side
  bool close_after = false;    // close once the response is written
  bool broken = false;         // a send failed
  bool continue_sent = false;  // 100 Continue sent for the request being read
  bool refused = false;        // the response refuses a request the I/O thread could not read
  bool closed = false;
  int status = 0;
  Clock::time_point t_read;  // the request was fully read

  int timer = -1;  // which timer list it is in
  Clock::time_point deadline;
  Conn* prev = nullptr;
  Conn* next = nullptr;
};

}  // namespace

HttpResponse error_response(int status, const std::string& message) {
  HttpResponse r;
  r.status = status;
  r.body = error_body(status, message);
  return r;
}

struct EventServer::Impl {
  HttpHandler handler;
  HttpObserver observer;
  HttpOptions opt;
  HttpLimits limits;

  int epfd = -1, wakefd = -1, listen_fd = -1;
  int port = 0;
  bool loopback = false;
  std::atomic<bool> stop_requested{false}, stopping{false}, is_running{false};
  std::atomic<int> n_conns{0};

  // I/O thread only.
  std::vector<std::unique_ptr<Conn>> by_fd;
  std::vector<std::unique_ptr<Conn>> graveyard;  // closed this round; freed after it
  struct TimerList {
    Conn* head = nullptr;
    Conn* tail = nullptr;
    Clock::duration length{};
  } timers[kTimers];
  bool accept_paused = false;
  Clock::time_point accept_resume, last_overload_log;
  std::vector<Conn*> done_local;
  char rbuf[65536];

  // Requests for the workers.
  std::mutex work_mu;
  std::condition_variable work_cv;
  std::deque<Conn*> work;
  bool workers_exit = false;
  std::vector<std::thread> workers;

  // Connections the workers hand back.
  std::mutex done_mu;
  std::vector<Conn*> done;

  ~Impl() {
    for (auto& c : by_fd)
      if (c) ::close(c->fd);
    if (listen_fd >= 0) ::close(listen_fd);
    if (wakefd >= 0) ::close(wakefd);
    if (epfd >= 0) ::close(epfd);
  }

  void wake() {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wakefd, &one, sizeof one);
  }

  // ---- timers: one FIFO list per kind (all deadlines of a list have the same length)

  void timer_remove(Conn* c) {
    if (c->timer < 0) return;
    TimerList& l = timers[c->timer];
    (c->prev ? c->prev->next : l.head) = c->next;
    (c->next ? c->next->prev : l.tail) = c->prev;
    c->prev = c->next = nullptr;
    c->timer = -1;
  }

  void timer_set(Conn* c, int kind) {
    timer_remove(c);
    TimerList& l = timers[kind];
    c->timer = kind;
    c->deadline = Clock::now() + l.length;
    c->prev = l.tail;
    c->next = nullptr;
    (l.tail ? l.tail->next : l.head) = c;
    l.tail = c;
  }

  int next_timeout_ms() const {
    auto earliest = Clock::time_point::max();
    for (const TimerList& l : timers)
      if (l.head && l.head->deadline < earliest) earliest = l.head->deadline;
    if (accept_paused && accept_resume < earliest) earliest = accept_resume;
    if (earliest == Clock::time_point::max()) return -1;
    const auto left = earliest - Clock::now();
    if (left <= Clock::duration::zero()) return 0;
    // Rounded up, so that the loop does not wake just before the deadline and spin.
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    return ms > 3600 * 1000 ? 3600 * 1000 : static_cast<int>(ms);
  }

  void expire_timers() {
    const auto now = Clock::now();
    for (int k = 0; k < kTimers; ++k) {
      while (Conn* c = timers[k].head) {
        if (c->deadline > now) break;
        timer_remove(c);
        switch (k) {
          case kIdleTimer:
          case kLingerTimer:
            close_conn(c);
            break;
          case kReadTimer:
            guarded(c, [&] {
              refuse(c, 408,
                     "the request was not received completely within " +
                         seconds_text(opt.read_timeout_seconds) + " s (--read-timeout)");
            });
            break;
          case kWriteTimer:
            observe(c, false);
            close_conn(c);
            break;
        }
      }
    }
    if (accept_paused && now >= accept_resume && listen_fd >= 0) {
      epoll_event e{};
      e.events = EPOLLIN;
      e.data.ptr = &kListenTag;
      if (epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &e) == 0)
        accept_paused = false;
      else
        accept_resume = now + kAcceptPause;
    }
  }

  // ---- connections

  bool arm(Conn* c, uint32_t events) {
    epoll_event e{};
    e.events = events | EPOLLONESHOT;
    e.data.ptr = c;
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e) == 0) return true;
    close_conn(c);
    return false;
  }

  void close_conn(Conn* c) {
    if (c->closed) return;
    c->closed = true;
    timer_remove(c);
    ::close(c->fd);  // also takes it out of the epoll set
    n_conns.fetch_sub(1, std::memory_order_relaxed);
    graveyard.push_back(std::move(by_fd[static_cast<size_t>(c->fd)]));
  }

  void observe(Conn* c, bool written) {
    if (!observer) return;
    RequestRecord r;
    r.method = c->req.method;
    r.path = c->req.path;
    r.remote = c->remote;
    r.status = c->status;
    r.seconds = c->refused ? -1.0 : std::chrono::duration<double>(Clock::now() - c->t_read).count();
    r.written = written;
    observer(r);
  }

  /// Sends what it can of c->out; sets c->broken when the connection failed.
  static void write_out(Conn* c) {
    while (c->out_off < c->out.size()) {
      const ssize_t n = ::send(c->fd, c->out.data() + c->out_off, c->out.size() - c->out_off,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        c->out_off += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
      } else {
        c->broken = true;
        return;
      }
    }
  }

  void accept_all() {
    for (int i = 0; i < 128 && listen_fd >= 0; ++i) {
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len,
                               SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        const int e = errno;
        if (e == EAGAIN || e == EWOULDBLOCK) return;
        if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
          // Out of descriptors: the pending connection stays in the backlog and the socket
          // stays readable; stop watching it for a moment rather than spin.
          epoll_ctl(epfd, EPOLL_CTL_DEL, listen_fd, nullptr);
          accept_paused = true;
          accept_resume = Clock::now() + kAcceptPause;
          log_overload("cannot accept connections (" + errno_text(e) +
                       "); pausing accepts for 100 ms");
          return;
        }
        continue;  // ECONNABORTED, EINTR, network errors of that connection: the next
      }
      if (n_conns.load(std::memory_order_relaxed) >= opt.max_connections) {
        refuse_connection(fd, ss);
        continue;
      }
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      std::unique_ptr<Conn> c;
      try {
        c = std::make_unique<Conn>(limits);
        c->fd = fd;
        c->remote = address_text(ss);
        if (by_fd.size() <= static_cast<size_t>(fd)) by_fd.resize(static_cast<size_t>(fd) * 2 + 16);
      } catch (const std::bad_alloc&) {
        ::close(fd);
        continue;
      }
      epoll_event e{};
      e.events = EPOLLIN | EPOLLONESHOT;
      e.data.ptr = c.get();
      if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) != 0) {
        ::close(fd);
        continue;
      }
      Conn* p = c.get();
      by_fd[static_cast<size_t>(fd)] = std::move(c);
      n_conns.fetch_add(1, std::memory_order_relaxed);
      timer_set(p, kIdleTimer);
    }
  }

  /// Over max_connections: a 503 and close, without registering the connection.
  void refuse_connection(int fd, const sockaddr_storage& ss) {
    // Read what the client already sent, so that closing does not reset the connection
    // before it has read the answer.
    for (int i = 0; i < 4; ++i)
      if (::recv(fd, rbuf, sizeof rbuf, MSG_DONTWAIT) <= 0) break;
    std::string out;
    format_response(
        out,
        error_response(503, "too many open connections (--max-connections " +
                                std::to_string(opt.max_connections) + "); try again later"),
        false, true, false);
    [[maybe_unused]] ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::shutdown(fd, SHUT_WR);
    ::close(fd);
    log_overload("--max-connections " + std::to_string(opt.max_connections) +
                 " reached: new connections are answered 503 and closed");
    if (observer) {
      const std::string remote = address_text(ss);
      RequestRecord r;
      r.remote = remote;
      r.status = 503;
      observer(r);
    }
  }

  void log_overload(const std::string& what) {
    const auto now = Clock::now();
    if (opt.quiet || now - last_overload_log < std::chrono::seconds(10)) return;
    last_overload_log = now;
    std::fprintf(stderr, "seqrec serve: %s\n", what.c_str());
  }

  /// Runs f (I/O-thread work on c); if it throws (out of memory), gives c up instead of
  /// letting the server go down. A connection a worker holds is left to the worker.
  template <class F>
  void guarded(Conn* c, F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      if (!opt.quiet) std::fprintf(stderr, "seqrec serve: dropping a connection: %s\n", e.what());
      if (!c->closed && c->state != Conn::State::Busy) close_conn(c);
    }
  }

  void on_event(Conn* c) {
    if (c->closed) return;  // closed earlier in this round
    switch (c->state) {
      case Conn::State::Idle:
      case Conn::State::Reading:
        on_readable(c);
        break;
      case Conn::State::Writing:
        on_writable(c);
        break;
      case Conn::State::Lingering:
        on_linger(c);
        break;
      case Conn::State::Busy:
        break;  // not armed while busy
    }
  }

  void on_readable(Conn* c) {
    for (int round = 0;; ++round) {
      const ssize_t n = ::recv(c->fd, rbuf, sizeof rbuf, 0);
      if (n > 0) {
        c->in.append(rbuf, static_cast<size_t>(n));
        if (static_cast<size_t>(n) < sizeof rbuf || round >= 15) break;  // drained (or enough)
        // More may be waiting: parse first, so that reading stops at a complete request.
        size_t consumed = 0;
        const auto r = c->parser.feed(c->in, &consumed);
        c->in.erase(0, consumed);
        if (r != RequestParser::Result::NeedMore) break;
        continue;
      }
      if (n == 0) {
        c->eof = true;
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      close_conn(c);  // reset by the client
      return;
    }
    advance(c);
  }

  /// Parses what the connection has buffered and moves it on: a complete request to the
  /// workers, a malformed one to its error answer, else waits for more.
  void advance(Conn* c) {
    size_t consumed = 0;
    const auto r = c->parser.feed(c->in, &consumed);
    c->in.erase(0, consumed);
    if (r == RequestParser::Result::Complete) {
      dispatch(c);
      return;
    }
    if (r == RequestParser::Result::Error) {
      const HttpParseError e = c->parser.error();
      refuse(c, e.status, e.message);
      return;
    }
    if (c->parser.wants_continue() && !c->continue_sent && c->in.empty() && !c->eof) {
      // Nothing else is being sent on this connection now (one request at a time), so the
      // interim answer fits the socket unless the client stopped reading: then drop it.
      static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      const ssize_t n = ::send(c->fd, kContinue, sizeof kContinue - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n != static_cast<ssize_t>(sizeof kContinue - 1)) {
        close_conn(c);
        return;
      }
      c->continue_sent = true;
    }
    const bool started = c->parser.started() || !c->in.empty();
    if (c->eof) {
      if (started)
        refuse(c, 400,
               "the client closed its side of the connection before the request was complete");
      else
        close_conn(c);
      return;
    }
    if (started) {
      if (c->timer != kReadTimer) timer_set(c, kReadTimer);  // from the request's first bytes
      c->state = Conn::State::Reading;
    } else {
      if (c->timer != kIdleTimer) timer_set(c, kIdleTimer);
      c->state = Conn::State::Idle;
    }
    arm(c, EPOLLIN);
  }

  void dispatch(Conn* c) {
    c->req = std::move(c->parser.request());
    c->parser.reset();
    c->continue_sent = false;
    c->refused = false;
    c->close_after = !c->req.keep_alive;
    c->t_read = Clock::now();
    timer_remove(c);
    c->state = Conn::State::Busy;
    {
      std::lock_guard<std::mutex> lock(work_mu);
      work.push_back(c);
    }
    work_cv.notify_one();
  }

  /// Answers a request the I/O thread refuses (malformed, too large, too slow) and closes
  /// the connection after the answer.
  void refuse(Conn* c, int status, const std::string& message) {
    c->req = std::move(c->parser.request());
    c->parser.reset();
    c->refused = true;
    c->status = status;
    c->close_after = true;
    c->in.clear();
    format_response(c->out, error_response(status, message), c->req.method == "HEAD", true,
                    c->req.minor_version == 0);
    c->out_off = 0;
    write_out(c);
    response_progress(c);
  }

  /// After a write attempt (by a worker or here): go on writing, close, or move on.
  void response_progress(Conn* c) {
    if (c->broken) {
      if (c->refused) observe(c, false);
      close_conn(c);
      return;
    }
    if (c->out_off < c->out.size()) {
      c->state = Conn::State::Writing;
      if (c->timer != kWriteTimer) timer_set(c, kWriteTimer);
      arm(c, EPOLLOUT);
      return;
    }
    if (c->refused) observe(c, true);  // (a worker observes its own responses)
    after_response(c);
  }

  void on_writable(Conn* c) {
    write_out(c);
    if (c->broken) {
      observe(c, false);
      close_conn(c);
      return;
    }
    if (c->out_off < c->out.size()) {
      arm(c, EPOLLOUT);
      return;
    }
    timer_remove(c);
    observe(c, true);
    after_response(c);
  }

  void after_response(Conn* c) {
    c->out.clear();
    c->out_off = 0;
    if (c->out.capacity() > (1u << 16)) std::string().swap(c->out);
    if (c->in.empty() && c->in.capacity() > (1u << 16)) std::string().swap(c->in);
    c->req = HttpRequest();
    if (stopping.load(std::memory_order_relaxed)) {
      close_conn(c);
      return;
    }
    if (c->close_after) {
      // Shut down our side and drain what the client still sends until it closes too.
      ::shutdown(c->fd, SHUT_WR);
      if (c->eof) {
        close_conn(c);
        return;
      }
      c->state = Conn::State::Lingering;
      timer_set(c, kLingerTimer);
      arm(c, EPOLLIN);
      return;
    }
    advance(c);  // a pipelined request may be waiting in the buffer
  }

  void on_linger(Conn* c) {
    for (int i = 0; i < 16; ++i) {
      const ssize_t n = ::recv(c->fd, rbuf, sizeof rbuf, 0);
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        arm(c, EPOLLIN);
        return;
      }
      break;  // the client closed, or an error
    }
    close_conn(c);
  }

  void on_wake() {
    uint64_t v;
    [[maybe_unused]] ssize_t n = ::read(wakefd, &v, sizeof v);
    done_local.clear();
    {
      std::lock_guard<std::mutex> lock(done_mu);
      done_local.swap(done);
    }
    for (Conn* c : done_local) {
      c->state = Conn::State::Writing;  // back with the I/O thread (Busy no more)
      guarded(c, [&] { response_progress(c); });
    }
  }

  void begin_stop() {
    stopping = true;
    if (listen_fd >= 0) {
      ::close(listen_fd);
      listen_fd = -1;
    }
    accept_paused = false;
    for (auto& p : by_fd) {
      Conn* c = p.get();
      if (!c) continue;
      if (c->state == Conn::State::Idle || c->state == Conn::State::Reading ||
          c->state == Conn::State::Lingering)
        close_conn(c);
    }
  }

  void worker_main() {
    while (true) {
      Conn* c = nullptr;
      {
        std::unique_lock<std::mutex> lock(work_mu);
        work_cv.wait(lock, [&] { return !work.empty() || workers_exit; });
        if (work.empty()) return;
        c = work.front();
        work.pop_front();
      }
      try {
        HttpResponse res;
        try {
          res = handler(c->req);
        } catch (const std::bad_alloc&) {
          res = error_response(503, "out of memory");
        } catch (const std::exception& e) {
          res = error_response(500, std::string("internal error: ") + e.what());
        } catch (...) {
          res = error_response(500, "internal error");
        }
        if (stopping.load(std::memory_order_relaxed)) c->close_after = true;
        c->status = res.status;
        format_response(c->out, res, c->req.method == "HEAD", c->close_after,
                        c->req.minor_version == 0);
        c->out_off = 0;
        write_out(c);
        if (c->broken || c->out_off == c->out.size()) observe(c, !c->broken);
      } catch (...) {
        c->broken = true;  // out of memory for the response: give the connection up
      }
      bool was_empty;
      {
        std::lock_guard<std::mutex> lock(done_mu);
        was_empty = done.empty();
        done.push_back(c);
      }
      if (was_empty) wake();
    }
  }

  void loop() {
    std::vector<epoll_event> events(256);
    while (true) {
      if (stop_requested.load() && !stopping) begin_stop();
      graveyard.clear();
      if (stopping && n_conns.load() == 0) return;
      const int n =
          epoll_wait(epfd, events.data(), static_cast<int>(events.size()), next_timeout_ms());
      if (n < 0) {
        if (errno == EINTR) continue;
        throw IoError("seqrec serve: epoll_wait failed: " + errno_text(errno));
      }
      for (int i = 0; i < n; ++i) {
        void* p = events[static_cast<size_t>(i)].data.ptr;
        if (p == &kListenTag)
          accept_all();
        else if (p == &kWakeTag)
          on_wake();
        else
          guarded(static_cast<Conn*>(p), [&] { on_event(static_cast<Conn*>(p)); });
      }
      expire_timers();
    }
  }
};

int default_http_threads() {
  const unsigned cores = std::thread::hardware_concurrency();
  return std::max(8, 2 * static_cast<int>(cores));
}

EventServer::EventServer(HttpHandler handler, HttpObserver observer, const HttpOptions& options)
    : impl_(std::make_unique<Impl>()) {
  auto positive = [](double v, const char* name) {
    if (!(v > 0) || v > 1e6)
      throw InputError(std::string(name) + " must be more than 0 and at most 1e6 seconds");
  };
  if (options.threads < 1 || options.threads > 4096)
    throw InputError("--threads must be between 1 and 4096, got " +
                     std::to_string(options.threads));
  if (options.max_connections < 1)
    throw InputError("--max-connections must be at least 1, got " +
                     std::to_string(options.max_connections));
  if (options.max_body < 1) throw InputError("--max-body must be at least 1 byte");
  if (options.port < 0 || options.port > 65535)
    throw InputError("--port must be between 0 and 65535, got " + std::to_string(options.port));
  positive(options.keep_alive_seconds, "--keep-alive");
  positive(options.read_timeout_seconds, "--read-timeout");
  positive(options.write_timeout_seconds, "--write-timeout");
  if (options.max_request_line < 64 || options.max_header_bytes < 64 || options.max_headers < 1)
    throw InputError("the request line and header limits must be at least 64 bytes and 1 field");
  Impl& m = *impl_;
  m.handler = std::move(handler);
  m.observer = std::move(observer);
  m.opt = options;
  m.limits.max_request_line = options.max_request_line;
  m.limits.max_header_bytes = options.max_header_bytes;
  m.limits.max_headers = options.max_headers;
  m.limits.max_body = options.max_body;
  m.timers[kIdleTimer].length = seconds_to_duration(options.keep_alive_seconds);
  m.timers[kReadTimer].length = seconds_to_duration(options.read_timeout_seconds);
  m.timers[kWriteTimer].length = seconds_to_duration(options.write_timeout_seconds);
  m.timers[kLingerTimer].length = seconds_to_duration(kLingerSeconds);
  m.epfd = epoll_create1(EPOLL_CLOEXEC);
  if (m.epfd < 0) throw IoError("seqrec serve: epoll_create1 failed: " + errno_text(errno));
  m.wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (m.wakefd < 0) throw IoError("seqrec serve: eventfd failed: " + errno_text(errno));
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.ptr = &kWakeTag;
  if (epoll_ctl(m.epfd, EPOLL_CTL_ADD, m.wakefd, &e) != 0)
    throw IoError("seqrec serve: epoll_ctl failed: " + errno_text(errno));
}

EventServer::~EventServer() {
  stop();
}

int EventServer::bind() {
  Impl& m = *impl_;
  if (m.listen_fd >= 0) return m.port;
  const std::string where =
      m.opt.host + ":" + (m.opt.port == 0 ? std::string("(any port)") : std::to_string(m.opt.port));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(m.opt.port);
  const int rc =
      getaddrinfo(m.opt.host.empty() ? nullptr : m.opt.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) throw IoError("cannot listen on " + where + ": " + gai_strerror(rc));
  int fd = -1, err = 0;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    // SO_REUSEADDR for quick restarts (TIME_WAIT); not SO_REUSEPORT, which would let a
    // second server share a port in use silently.
    const int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, SOMAXCONN) == 0) break;
    err = errno;
    ::close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0)
    throw IoError("cannot listen on " + where + ": " + errno_text(err) +
                  (err == EADDRINUSE ? " (the port is in use)" : ""));
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  m.port = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6&>(ss).sin6_port)
                                    : ntohs(reinterpret_cast<sockaddr_in&>(ss).sin_port);
  if (ss.ss_family == AF_INET) {
    m.loopback = (ntohl(reinterpret_cast<sockaddr_in&>(ss).sin_addr.s_addr) >> 24) == 127;
  } else if (ss.ss_family == AF_INET6) {
    const in6_addr& a6 = reinterpret_cast<sockaddr_in6&>(ss).sin6_addr;
    m.loopback = IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
  }
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.ptr = &kListenTag;
  if (epoll_ctl(m.epfd, EPOLL_CTL_ADD, fd, &e) != 0) {
    const int e2 = errno;
    ::close(fd);
    throw IoError("cannot listen on " + where + ": epoll_ctl: " + errno_text(e2));
  }
  m.listen_fd = fd;
  return m.port;
}

void EventServer::run() {
  Impl& m = *impl_;
  if (m.stop_requested) return;
  if (m.listen_fd < 0) bind();
  m.is_running = true;
  for (int i = 0; i < m.opt.threads; ++i) m.workers.emplace_back([&m] { m.worker_main(); });
  auto join_workers = [&m] {
    {
      std::lock_guard<std::mutex> lock(m.work_mu);
      m.workers_exit = true;
    }
    m.work_cv.notify_all();
    for (auto& t : m.workers) t.join();
    m.workers.clear();
    m.is_running = false;
  };
  try {
    m.loop();
  } catch (...) {
    join_workers();
    throw;
  }
  join_workers();
}

void EventServer::stop() {
  impl_->stop_requested = true;
  impl_->wake();
}

bool EventServer::loopback() const {
  return impl_->loopback;
}

bool EventServer::running() const {
  return impl_->is_running;
}

int EventServer::connections() const {
  return impl_->n_conns.load();
}

}  // namespace seqrec::serve::http

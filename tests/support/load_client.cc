#include "load_client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "baton/fd.h"
#include "common/syscall.h"
#include "harness.h"

namespace baton::test {
namespace {

constexpr size_t kKeptFailures = 20;
constexpr auto kRequestTimeout = std::chrono::seconds(10);

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

enum class Outcome { kOk, kRetryable, kFailed };

struct Exchange {
  Outcome outcome = Outcome::kFailed;
  std::string error;
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  bool server_closes = false;
};

// Sends one request on the keep-alive connection `fd` and reads one response (Content-Length
// framed, as the test servers send).
Exchange exchange(int fd, const std::string& path, bool reused, bool close) {
  Exchange ex;
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: load\r\n";
  if (close) req += "Connection: close\r\n";
  req += "\r\n";
  if (retry_eintr(::send, fd, req.data(), req.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(req.size())) {
    ex.outcome = reused ? Outcome::kRetryable : Outcome::kFailed;
    ex.error = std::string("send: ") + std::strerror(errno);
    return ex;
  }
  std::string buf;
  char chunk[4096];
  size_t head_end = std::string::npos, need = 0;
  for (;;) {
    ssize_t n = retry_eintr(::recv, fd, chunk, sizeof(chunk), 0);
    if (n <= 0) {
      int err = n < 0 ? errno : 0;
      ex.outcome = reused && buf.empty() && (n == 0 || err == ECONNRESET) ? Outcome::kRetryable
                                                                          : Outcome::kFailed;
      ex.error = n == 0 ? "EOF after " + std::to_string(buf.size()) + " bytes"
                        : std::string("recv: ") + std::strerror(err);
      return ex;
    }
    buf.append(chunk, static_cast<size_t>(n));
    if (head_end == std::string::npos) {
      head_end = buf.find("\r\n\r\n");
      if (head_end == std::string::npos) continue;
      std::istringstream lines(buf.substr(0, head_end));
      std::string line;
      std::getline(lines, line);
      if (!line.starts_with("HTTP/1.1 ")) {
        ex.error = "status line: " + line.substr(0, line.find('\r'));
        return ex;
      }
      ex.status = std::atoi(line.c_str() + 9);
      while (std::getline(lines, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        ex.headers[lower(line.substr(0, colon))] = value;
      }
      auto cl = ex.headers.find("content-length");
      if (cl == ex.headers.end()) {
        ex.error = "no Content-Length";
        return ex;
      }
      need = head_end + 4 + std::stoul(cl->second);
      ex.server_closes = lower(ex.headers["connection"]) == "close";
    }
    if (buf.size() >= need) {
      ex.body = buf.substr(head_end + 4, need - head_end - 4);
      ex.outcome = Outcome::kOk;
      return ex;
    }
  }
}

Fd connect_to(const Address& a, std::string* error) {
  Fd fd(::socket(a.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  timeval tv{kRequestTimeout.count(), 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (a.family() != AF_UNIX) {
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  if (retry_eintr(::connect, fd.get(), a.sockaddr_ptr(), a.length) != 0) {
    *error = "connect " + a.to_string() + ": " + std::strerror(errno);
    fd.reset();
  }
  return fd;
}

}  // namespace

LoadClient::LoadClient(Address target, LoadOptions options)
    : target_(std::move(target)), options_(std::move(options)) {
  options_.tally_header = lower(options_.tally_header);
  for (int i = 0; i < options_.threads; ++i) {
    threads_.emplace_back([this] {
      if (options_.keep_alive) {
        run_keep_alive();
      } else {
        run_new_connections();
      }
    });
  }
}

LoadClient::~LoadClient() { stop(); }

void LoadClient::stop() {
  stop_ = true;
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

std::map<std::string, long> LoadClient::tally() const {
  std::lock_guard lock(mu_);
  return tally_;
}

std::vector<std::string> LoadClient::failures() const {
  std::lock_guard lock(mu_);
  return failures_;
}

bool LoadClient::wait_for_successes(long n, std::chrono::milliseconds timeout) {
  long target = ok() + n;
  return wait_until([&] { return ok() >= target; }, timeout, std::chrono::milliseconds(2));
}

LoadClient::Response LoadClient::judge(int status,
                                       const std::map<std::string, std::string>& headers,
                                       const std::string& body) const {
  Response r;
  if (status != 200 || !body.starts_with(options_.expect_body_prefix)) {
    r.problem = "status " + std::to_string(status) + " body '" + body.substr(0, 40) + "'";
    return r;
  }
  if (!options_.tally_header.empty()) {
    auto h = headers.find(options_.tally_header);
    r.key = h == headers.end() ? "" : h->second;
  } else {
    r.key = body.substr(0, body.find('\n'));
  }
  return r;
}

void LoadClient::count(const Response& r) {
  std::lock_guard lock(mu_);
  if (r.problem.empty()) {
    ++ok_;
    ++tally_[r.key];
  } else {
    ++failed_;
    if (failures_.size() < kKeptFailures) failures_.push_back(r.problem);
  }
}

void LoadClient::run_new_connections() {
  while (!stop_) {
    auto r = http_get(target_, options_.path, kRequestTimeout);
    Response outcome = r ? judge(r->status, r->headers, r->body) : Response{r.error().what(), ""};
    count(outcome);
    if (!outcome.problem.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void LoadClient::run_keep_alive() {
  Fd conn;
  bool reused = false;
  long n = 0;
  while (!stop_) {
    bool close = (++n % 16) == 0;
    Response outcome;
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!conn) {
        std::string err;
        conn = connect_to(target_, &err);
        reused = false;
        if (!conn) {
          outcome.problem = err;
          break;
        }
      }
      Exchange ex = exchange(conn.get(), options_.path, reused, close);
      if (ex.outcome == Outcome::kOk) {
        outcome = judge(ex.status, ex.headers, ex.body);
        reused = true;
        if (close || ex.server_closes || !outcome.problem.empty()) conn.reset();
        break;
      }
      conn.reset();
      if (ex.outcome == Outcome::kRetryable && attempt == 0 && options_.retry) {
        ++retried_;
        continue;
      }
      outcome.problem = ex.error;
      break;
    }
    count(outcome);
    if (!outcome.problem.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace baton::test

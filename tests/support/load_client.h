// load_client.h: the one HTTP load client of the end-to-end tests: threads sending GET requests
// until stopped, counting what a client would see.
//
// Two ways to use connections:
//   new connection (default): each request on a fresh connection, "Connection: close" (http_get);
//   keep_alive: each thread keeps one connection and sends again and again on it (every 16th
//     request with "Connection: close"). A request on a REUSED connection that the server closed
//     before sending a single byte is retried once on a new connection, as every HTTP client does
//     (the server may close an idle connection while the request is in flight; RFC 9112 section
//     9.3.1); such retries are counted apart, unless `retry` is off: then the failure counts, as
//     for a load balancer or a POST client, which never retry. A refused connect is always a
//     failure.
// A request fails when it gets no complete response, a status other than 200, or a body that
// does not start with `expect_body_prefix`. A failing thread pauses 1 ms before its next request,
// so a refused connect (which returns at once) does not starve the server of CPU.
//
// Successful responses are tallied by a key: the value of `tally_header` (e.g. X-Pid) when set,
// else the first line of the body (the test apps answer "generation 3 pid 42", "python pid=42").
//
// Thread safety: every method may be called from any thread while the load runs.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/address.h"

namespace baton::test {

struct LoadOptions {
  int threads = 2;
  std::string path = "/";
  bool keep_alive = false;
  bool retry = true;  // keep_alive: retry once a request the server closed a reused connection on
  std::string expect_body_prefix;
  std::string tally_header;  // case-insensitive; empty: tally by the body's first line
};

class LoadClient {
 public:
  LoadClient(Address target, LoadOptions options);
  ~LoadClient();  // stops
  LoadClient(const LoadClient&) = delete;
  LoadClient& operator=(const LoadClient&) = delete;
  // Lets the requests in flight end, then joins the threads.
  void stop();

  long ok() const { return ok_.load(); }
  long failed() const { return failed_.load(); }
  long retried() const { return retried_.load(); }
  long requests() const { return ok() + failed(); }
  std::map<std::string, long> tally() const;
  std::vector<std::string> failures() const;  // the first 20 failure descriptions
  // Waits until `n` more requests succeeded; false on timeout.
  bool wait_for_successes(long n, std::chrono::milliseconds timeout);

 private:
  struct Response {
    std::string problem;  // empty: ok
    std::string key;
  };
  void run_new_connections();
  void run_keep_alive();
  void count(const Response& r);
  Response judge(int status, const std::map<std::string, std::string>& headers,
                 const std::string& body) const;

  Address target_;
  LoadOptions options_;
  std::atomic<bool> stop_{false};
  std::atomic<long> ok_{0}, failed_{0}, retried_{0};
  mutable std::mutex mu_;
  std::map<std::string, long> tally_;
  std::vector<std::string> failures_;
  std::vector<std::thread> threads_;
};

}  // namespace baton::test

// handover_load.h: a keep-alive HTTP load client that counts failures the way a client sees them.
//
// Each thread keeps one connection and sends GET / on it again and again (every 16th request with
// "Connection: close"). A request counts as failed when it gets no complete 200 response, with
// one exception every HTTP client makes: a request on a REUSED keep-alive connection that the
// server closed before sending a single byte is retried once on a new connection (the server may
// close an idle connection at the moment the request is in flight; RFC 9112 section 9.3.1).
// Such retries are counted apart. A refused connect is always a failure.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/address.h"

namespace baton::test {

class LoadClient {
 public:
  LoadClient(Address target, int threads);
  ~LoadClient();  // stops
  void stop();

  long ok() const { return ok_.load(); }
  long failed() const { return failed_.load(); }
  long retried() const { return retried_.load(); }
  // Responses per X-Pid seen.
  std::map<std::string, long> by_pid() const;
  std::vector<std::string> errors() const;  // the first few failure descriptions

 private:
  void run();
  Address target_;
  std::atomic<bool> stop_{false};
  std::atomic<long> ok_{0}, failed_{0}, retried_{0};
  mutable std::mutex mu_;
  std::map<std::string, long> by_pid_;
  std::vector<std::string> errors_;
  std::vector<std::thread> threads_;
};

}  // namespace baton::test

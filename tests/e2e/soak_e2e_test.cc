// End-to-end tests of `baton soak`: real processes, real sockets on 127.0.0.1.
//
// Servers: an in-process TinyServer whose misbehaviour is chosen per test (it counts what it
// answers, the independent tally soak's counts are checked against), and the example server
// (baton-example-http) restarted either by kill-and-start or by `baton run` + `baton reload`.
// curl in a loop is the independent client that must see the same kind of outcome as soak.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/listener.h"
#include "harness.h"

namespace baton::test {
namespace {

// What the in-process server does with each request.
enum class Mode {
  kOk,               // 200, keep-alive
  kStatus503,        // 503, keep-alive
  kCloseNoResponse,  // read the request, close without answering (FIN)
  kResetNoResponse,  // read the request, close with RST (SO_LINGER 0)
  kGarbage,          // answer bytes that are not HTTP
  kNeverAnswer,      // read the request, say nothing, keep the connection open
  kOneThenDrop,      // answer the first request of a connection, close silently on the second
  kSlow100ms,        // 200 after 100 ms
};

class TinyServer {
 public:
  explicit TinyServer(Mode mode) : mode_(mode) {
    auto a = parse_address("127.0.0.1:0");
    auto fd = bind_listener(*a, {});
    if (!fd) std::abort();
    listener_ = std::move(*fd);
    auto bound = bound_address(listener_.get(), Transport::kTcp);
    port_ = bound->port();
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~TinyServer() {
    stop_ = true;
    acceptor_.join();
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& t : workers_) t.join();
  }
  std::string url(const std::string& path = "/") const {
    return fmt::format("http://127.0.0.1:{}{}", port_, path);
  }
  uint64_t responses() const { return responses_.load(); }
  uint64_t connections() const { return connections_.load(); }

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{listener_.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      ++connections_;
      std::lock_guard<std::mutex> lock(mu_);
      workers_.emplace_back([this, c] { serve(Fd(c)); });
    }
  }

  void serve(Fd fd) {
    std::string in;
    int served = 0;
    char buf[4096];
    while (!stop_) {
      size_t end = in.find("\r\n\r\n");
      if (end == std::string::npos) {
        pollfd p{fd.get(), POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
        if (n <= 0) return;
        in.append(buf, static_cast<size_t>(n));
        continue;
      }
      bool close_after = in.substr(0, end).find("Connection: close") != std::string::npos;
      in.erase(0, end + 4);
      std::string resp;
      switch (mode_) {
        case Mode::kOk:
        case Mode::kSlow100ms:
          if (mode_ == Mode::kSlow100ms)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
          resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
          break;
        case Mode::kStatus503:
          resp = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy";
          break;
        case Mode::kCloseNoResponse:
          return;
        case Mode::kResetNoResponse: {
          linger l{1, 0};
          ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
          return;
        }
        case Mode::kGarbage:
          resp = "SSH-2.0-OpenSSH_9.2\r\n\r\n";
          break;
        case Mode::kNeverAnswer:
          while (!stop_) std::this_thread::sleep_for(std::chrono::milliseconds(20));
          return;
        case Mode::kOneThenDrop:
          if (served == 1) return;
          resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
          break;
      }
      if (::send(fd.get(), resp.data(), resp.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(resp.size())) {
        return;
      }
      ++served;
      ++responses_;
      if (close_after || mode_ == Mode::kGarbage) return;
    }
  }

  Mode mode_;
  Fd listener_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> responses_{0};
  std::atomic<uint64_t> connections_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> workers_;
};

struct SoakRun {
  int exit_code = -1;
  std::string output;
  nlohmann::json json;
};

// Runs `baton soak ARGS --json FILE` to completion and loads the JSON.
SoakRun soak(std::vector<std::string> args,
             std::chrono::seconds timeout = std::chrono::seconds(120)) {
  TempDir dir;
  std::string json_path = dir.file("soak.json");
  std::vector<std::string> argv = {baton_binary(), "soak"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--json");
  argv.push_back(json_path);
  CommandResult r = run(argv, timeout);
  SoakRun s;
  s.exit_code = r.exit_code;
  s.output = r.output;
  s.json = nlohmann::json::parse(read_file(json_path), nullptr, false);
  return s;
}

uint64_t failures_of(const nlohmann::json& j, const std::string& kind) {
  return j["failures"].value(kind, uint64_t{0});
}

TEST(SoakE2E, BadInputIsExit2WithOneLine) {
  TinyServer server(Mode::kOk);
  struct Case {
    std::vector<std::string> args;
    std::string message;
  } cases[] = {
      {{"--url", "ftp://x/"}, "bad URL 'ftp://x/'"},
      {{"--url", "http://127.0.0.1:99999/"}, "port must be a number"},
      {{"--url", server.url(), "-c", "2", "-t", "4"}, "--threads 4 is more than --connections 2"},
      {{"--url", server.url(), "-d", "banana"}, "bad duration 'banana'"},
      {{"--url", server.url(), "-d", "1s", "-n", "10"}, "excludes"},
      {{"--url", server.url(), "--reloads", "2", "--reload-cmd", "/nonexistent/restart"},
       "reload command '/nonexistent/restart' cannot be run"},
      {{"--url", server.url(), "--reloads", "2", "--reload-cmd", "no-such-tool-xyz --flag"},
       "reload command not found: 'no-such-tool-xyz'"},
      {{"--url", server.url(), "--verify-header", "X-Pid"},
       "--verify-header checks a --reload-cmd"},
      {{"--url", server.url(), "--json", "/nonexistent/dir/x.json"}, "--json /nonexistent/dir"},
      {{"--url", server.url(), "--reloads", "1", "--control", "/nonexistent/ctl.sock"},
       "cannot reload through baton"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv = {baton_binary(), "soak"};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    CommandResult r = run(argv, std::chrono::seconds(30));
    EXPECT_EQ(r.exit_code, 2) << c.message << "\n" << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << r.output;
  }
  EXPECT_EQ(server.responses(), 0u) << "bad input must be refused before any load";
}

TEST(SoakE2E, UnreachableServerIsExit2) {
  // A port nobody listens on: bind one, note it, close it.
  int port;
  {
    auto any = parse_address("127.0.0.1:0");
    auto fd = bind_listener(any.value(), {});
    ASSERT_TRUE(fd.ok());
    auto bound = bound_address(fd->get(), Transport::kTcp);
    port = bound->port();
  }
  CommandResult r =
      run({baton_binary(), "soak", "--url", fmt::format("http://127.0.0.1:{}/", port), "-d", "1s"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("is not answering: connect 127.0.0.1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Connection refused"), std::string::npos) << r.output;
}

TEST(SoakE2E, CountsMatchTheServersOwnCount) {
  {
    TinyServer server(Mode::kOk);
    SoakRun s = soak({"--url", server.url(), "-n", "5000", "-c", "8", "-t", "2"});
    ASSERT_EQ(s.exit_code, 0) << s.output;
    EXPECT_EQ(s.json["requests"]["total"], 5000);
    EXPECT_EQ(s.json["requests"]["ok"], 5000);
    // soak's one check before the run (does the server answer?) is the server's 5001st response.
    EXPECT_EQ(server.responses(), 5001u);
    EXPECT_EQ(s.json["requests"]["connections"].get<uint64_t>() + 1, server.connections());
    EXPECT_LE(server.connections(), 9u) << "keep-alive reuses connections";
    EXPECT_NE(s.output.find("PASS: 0 failed requests of 5,000"), std::string::npos) << s.output;
  }
  {
    TinyServer server(Mode::kOk);
    SoakRun s = soak({"--url", server.url(), "-n", "300", "-c", "4", "--close"});
    ASSERT_EQ(s.exit_code, 0) << s.output;
    EXPECT_EQ(s.json["requests"]["ok"], 300);
    EXPECT_EQ(server.responses(), 301u);
    EXPECT_EQ(server.connections(), 301u) << "--close: one connection per request";
  }
}

TEST(SoakE2E, ClassifiesEachKindOfServerFailure) {
  struct Case {
    Mode mode;
    std::string kind;
  } cases[] = {
      {Mode::kStatus503, "http_status"},        {Mode::kCloseNoResponse, "closed"},
      {Mode::kResetNoResponse, "reset"},        {Mode::kGarbage, "bad_response"},
      {Mode::kNeverAnswer, "response_timeout"},
  };
  for (const auto& c : cases) {
    TinyServer server(c.mode);
    SoakRun s = soak({"--url", server.url(), "-n", "20", "-c", "2", "-t", "1", "--timeout", "300ms",
                      "--connect-timeout", "1s"});
    EXPECT_EQ(s.exit_code, 1) << c.kind << "\n" << s.output;
    ASSERT_TRUE(s.json.is_object()) << s.output;
    EXPECT_EQ(s.json["requests"]["total"], 20) << c.kind;
    EXPECT_EQ(failures_of(s.json, c.kind), 20u) << c.kind << "\n" << s.output;
    if (c.mode == Mode::kStatus503) {
      EXPECT_EQ(s.json["statuses"]["503"], 20);
      EXPECT_NE(s.output.find("status 503 Service Unavailable"), std::string::npos) << s.output;
    }
  }
}

TEST(SoakE2E, ReusedKeepAliveClosedIsRetriedOnceAndReportedApart) {
  TinyServer server(Mode::kOneThenDrop);
  SoakRun s = soak({"--url", server.url(), "-n", "200", "-c", "2", "-t", "1"});
  ASSERT_EQ(s.exit_code, 0) << s.output;
  EXPECT_EQ(s.json["requests"]["ok"], 200);
  uint64_t first = s.json["first_try"]["keepalive_closed"];
  EXPECT_GE(first, 90u) << "every second request meets a dropped connection";
  EXPECT_EQ(s.json["requests"]["retried"], first);
  EXPECT_NE(s.output.find("first try:"), std::string::npos) << s.output;

  TinyServer strict(Mode::kOneThenDrop);
  SoakRun n = soak({"--url", strict.url(), "-n", "200", "-c", "2", "-t", "1", "--no-retry"});
  EXPECT_EQ(n.exit_code, 1) << n.output;
  EXPECT_GE(failures_of(n.json, "keepalive_closed"), 90u) << n.output;
  // Threshold: allowing those failures passes the gate.
  TinyServer lenient(Mode::kOneThenDrop);
  SoakRun m = soak({"--url", lenient.url(), "-n", "200", "-c", "2", "-t", "1", "--no-retry",
                    "--max-failures", "150"});
  EXPECT_EQ(m.exit_code, 0) << m.output;
}

TEST(SoakE2E, OpenLoopHoldsTheRateAndChargesStallsToLatency) {
  {
    TinyServer server(Mode::kOk);
    SoakRun s = soak({"--url", server.url(), "--rate", "200", "-d", "2s", "-c", "4"});
    ASSERT_EQ(s.exit_code, 0) << s.output;
    uint64_t total = s.json["requests"]["total"];
    EXPECT_GE(total, 380u);
    EXPECT_LE(total, 402u);
  }
  {
    // 100 ms per response on one connection is 10/s; asked for 50/s, requests queue behind each
    // other. Measured from their intended send times, latencies grow far past 100 ms; a
    // closed-loop tool would report ~100 ms.
    TinyServer server(Mode::kSlow100ms);
    SoakRun s = soak({"--url", server.url(), "--rate", "50", "-d", "2s", "-c", "1", "-t", "1"});
    ASSERT_EQ(s.exit_code, 0) << s.output;
    EXPECT_GT(s.json["latency_us"]["overall"]["p50"].get<uint64_t>(), 400'000u) << s.output;
    EXPECT_GT(s.json["latency_us"]["overall"]["max"].get<uint64_t>(), 1'000'000u) << s.output;
  }
}

// An independent client: curl in a loop for `seconds`, one line per request: "<http code> <exit>".
Process curl_loop(const std::string& url, int seconds, const std::string& out) {
  std::string script = fmt::format(
      "end=$(($(date +%s)+{})); while [ $(date +%s) -lt $end ]; do "
      "code=$(curl -s -o /dev/null -m 2 -w '%{{http_code}}' {}); echo \"$code $?\"; done",
      seconds, url);
  SpawnOptions o;
  o.output_path = out;
  return Process::spawn({"/bin/sh", "-c", script}, o);
}

struct CurlTally {
  int ok = 0, failed = 0, connect_failed = 0;
};
CurlTally tally(const std::string& path) {
  CurlTally t;
  std::ifstream in(path);
  std::string code, rc;
  while (in >> code >> rc) {
    if (code == "200" && rc == "0")
      ++t.ok;
    else
      ++t.failed;
    if (rc == "7") ++t.connect_failed;
  }
  return t;
}

int port_from_ready_line(Process& p) {
  if (!p.wait_for_output("ready on 127.0.0.1:", std::chrono::seconds(20))) return -1;
  std::string out = p.output();
  return std::atoi(out.c_str() + out.find("ready on 127.0.0.1:") + 19);
}

TEST(SoakE2E, KillAndStartFailsAndCurlSeesItToo) {
  TempDir dir;
  Process first =
      Process::spawn({example_binary(), "--listen", "127.0.0.1:0", "--init-seconds", "0"});
  int port = port_from_ready_line(first);
  ASSERT_GT(port, 0) << first.output();
  std::string pidfile = dir.file("pid");
  { std::ofstream(pidfile) << first.pid() << "\n"; }
  // The usual restart: stop the old process, start the new one, which needs ~1 s before it binds.
  std::string script = dir.file("restart.sh");
  {
    std::ofstream s(script);
    s << "#!/bin/sh\nkill $(cat " << pidfile << ") 2>/dev/null\n"
      << example_binary() << " --listen 127.0.0.1:" << port << " --init-seconds 1 >>"
      << dir.file("log") << " 2>&1 &\necho $! > " << pidfile << "\n";
  }
  ::chmod(script.c_str(), 0755);
  std::string url = fmt::format("http://127.0.0.1:{}/", port);
  Process curl = curl_loop(url, 7, dir.file("curl"));
  SoakRun s = soak({"--url", url, "-d", "6s", "-c", "10", "--reloads", "3", "--reload-cmd", script,
                    "--verify-header", "X-Pid"});
  curl.wait(std::chrono::seconds(20));
  pid_t last = std::atoi(read_file(pidfile).c_str());
  if (last > 0 && last != first.pid()) ::kill(last, SIGKILL);

  EXPECT_EQ(s.exit_code, 1) << s.output;
  ASSERT_TRUE(s.json.is_object()) << s.output;
  EXPECT_GT(failures_of(s.json, "refused"), 0u) << s.output;
  EXPECT_NE(s.output.find("connection refused"), std::string::npos) << s.output;
  EXPECT_EQ(s.json["reloads"]["ok"], 3) << s.output;
  for (const auto& r : s.json["reloads"]["list"]) {
    EXPECT_TRUE(r["verified"].get<bool>()) << r.dump();
    EXPECT_NE(r["before"], r["after"]);
  }
  EXPECT_GT(s.json["latency_us"]["reload_windows"]["failed"].get<uint64_t>(), 0u);
  CurlTally t = tally(dir.file("curl"));
  EXPECT_GT(t.ok, 0);
  EXPECT_GT(t.connect_failed, 0) << "curl, too, must have been refused during the restarts";
}

TEST(SoakE2E, FailingReloadCommandIsCountedAndFails) {
  TinyServer server(Mode::kOk);
  SoakRun s = soak({"--url", server.url(), "-d", "2s", "-c", "2", "--reloads", "2", "--reload-cmd",
                    "echo something broke >&2; exit 3"});
  EXPECT_EQ(s.exit_code, 1) << s.output;
  EXPECT_EQ(s.json["reloads"]["failed"], 2);
  EXPECT_EQ(s.json["requests"]["failed"], 0);
  EXPECT_NE(s.output.find("exit status 3: something broke"), std::string::npos) << s.output;
  EXPECT_NE(s.output.find("2 of 2 reloads failed"), std::string::npos) << s.output;
}

// Issue 13: --reloads N without --duration sizes the run to the reloads (from the first one's
// time), so no reload queues behind the one before it, and the reload windows do not cover the
// whole run. Each reload here takes about 1.9 s (the server's start-up): in the old default of
// 10 s, six of them had 1.67 s each and started ever later.
TEST(SoakE2E, ReloadsWithoutADurationSizeTheRunSoNoneStartsLate) {
  TempDir dir;
  std::string control = dir.file("ctl");
  Process supervisor =
      Process::spawn({baton_binary(), "run", "--control", control, "--listen", "127.0.0.1:0", "--",
                      example_binary(), "--init-seconds", "1.8"});
  int port = port_from_ready_line(supervisor);
  ASSERT_GT(port, 0) << supervisor.output();
  SoakRun s = soak({"--url", fmt::format("http://127.0.0.1:{}/", port), "-c", "4", "--reloads", "6",
                    "--window", "0.2s", "--control", control},
                   std::chrono::seconds(300));
  ASSERT_EQ(s.exit_code, 0) << s.output;
  ASSERT_TRUE(s.json.is_object()) << s.output;
  EXPECT_NE(s.output.find("sized to its 6 reloads"), std::string::npos) << s.output;
  EXPECT_TRUE(s.json["config"]["sized_to_reloads"].get<bool>());
  double planned = s.json["config"]["duration_s"];
  EXPECT_GT(planned, 0);
  EXPECT_GE(s.json["elapsed_s"].get<double>(), planned);
  const auto& list = s.json["reloads"]["list"];
  ASSERT_EQ(list.size(), 6u);
  EXPECT_EQ(s.json["reloads"]["ok"], 6);
  // What soak decided, not how fast the machine was (how late a reload started past its due time
  // is the scheduler's and the machine's; a busy machine made it 1.4 s under ASan):
  const double spacing = planned / 6;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& r = list[i];
    ASSERT_TRUE(r.contains("due_s") && r.contains("start_s") && r.contains("late_s")) << r.dump();
    // The plan: the first at the lead-in, then evenly over the sized run, each in the middle of
    // its share.
    if (i > 0) {
      EXPECT_NEAR(r["due_s"].get<double>(), (static_cast<double>(i) + 0.5) * spacing, 1e-6)
          << r.dump();
    }
    // Never two at once: each reload started once the previous one had ended (when a slow
    // machine makes a reload outlast its share, the next starts late, never early)...
    if (i > 0) {
      const auto& prev = list[i - 1];
      EXPECT_GE(r["start_s"].get<double>() + 1e-6,
                prev["start_s"].get<double>() + prev["duration_s"].get<double>())
          << r.dump() << " after " << prev.dump();
    }
    // ...and each waited for its due time: never started before it, and its lateness is
    // measured from it.
    EXPECT_GE(r["start_s"].get<double>(), r["due_s"].get<double>()) << r.dump();
    EXPECT_NEAR(r["late_s"].get<double>(), r["start_s"].get<double>() - r["due_s"].get<double>(),
                1e-6)
        << r.dump();
  }
  uint64_t total = s.json["requests"]["total"];
  uint64_t in_windows = s.json["latency_us"]["reload_windows"]["requests"];
  EXPECT_LT(in_windows, total * 4 / 5) << "the reload windows must not cover the whole run";
  EXPECT_EQ(s.json["requests"]["failed"], 0);
}

// The claim of the project: under `baton run`, reloads under load fail no request.
TEST(SoakE2E, BatonReloadsUnderLoadFailNothing) {
  TempDir dir;
  std::string control = dir.file("ctl");
  Process supervisor =
      Process::spawn({baton_binary(), "run", "--control", control, "--listen", "127.0.0.1:0", "--",
                      example_binary(), "--init-seconds", "0.1"});
  ASSERT_TRUE(supervisor.wait_for_output("ready on 127.0.0.1:", std::chrono::seconds(20)))
      << supervisor.output();
  int port = port_from_ready_line(supervisor);
  ASSERT_GT(port, 0);
  std::string url = fmt::format("http://127.0.0.1:{}/", port);
  int reloads = 100;
  Process curl = curl_loop(url, 20, dir.file("curl"));
  SoakRun s = soak({"--url", url, "-d", "20s", "-c", "20", "--reloads", std::to_string(reloads),
                    "--control", control, "--svg", dir.file("t.svg")},
                   std::chrono::seconds(400));
  curl.wait(std::chrono::seconds(60));
  EXPECT_EQ(s.exit_code, 0) << s.output << "\n" << supervisor.output().substr(0, 4000);
  ASSERT_TRUE(s.json.is_object()) << s.output;
  EXPECT_EQ(s.json["requests"]["failed"], 0) << s.output;
  EXPECT_EQ(s.json["reloads"]["ok"], reloads) << s.output;
  for (const auto& r : s.json["reloads"]["list"]) {
    ASSERT_TRUE(r["verified"].get<bool>()) << r.dump();
    EXPECT_EQ(std::stoll(r["after"].get<std::string>()),
              std::stoll(r["before"].get<std::string>()) + 1);
  }
  EXPECT_GT(s.json["requests"]["total"].get<uint64_t>(), 10'000u);
  CurlTally t = tally(dir.file("curl"));
  EXPECT_GT(t.ok, 20);
  EXPECT_EQ(t.failed, 0) << "the independent client must agree: nothing failed";
  CommandResult xml =
      run({"/usr/bin/env", "python3", "-c",
           "import sys, xml.dom.minidom as m; m.parse(sys.argv[1])", dir.file("t.svg")});
  EXPECT_EQ(xml.exit_code, 0) << "the SVG must be well-formed XML: " << xml.output;
}

}  // namespace
}  // namespace baton::test

// Unit tests of the supervisor's protocol pieces: control requests, readiness specs, sd_notify.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include <gtest/gtest.h>

#include "baton/fd.h"
#include "harness.h"

#include "supervisor/control_protocol.h"
#include "supervisor/notify_socket.h"
#include "supervisor/readiness.h"

namespace baton {
namespace {

TEST(ControlProtocol, RoundTripsEveryCommand) {
  for (auto cmd : {ControlRequest::Command::kReload, ControlRequest::Command::kStatus,
                   ControlRequest::Command::kStop, ControlRequest::Command::kUpgrade}) {
    for (bool wait : {false, true}) {
      const bool waits =
          cmd == ControlRequest::Command::kReload || cmd == ControlRequest::Command::kUpgrade;
      ControlRequest in{cmd, waits && wait};
      std::string line = format_control_request(in);
      ASSERT_EQ(line.back(), '\n');
      line.pop_back();
      auto out = parse_control_request(line);
      ASSERT_TRUE(out.ok()) << out.error().what();
      EXPECT_EQ(out->command, in.command);
      EXPECT_EQ(out->wait, in.wait);
    }
  }
}

TEST(ControlProtocol, RoundTripsACanaryReload) {
  ControlRequest in{ControlRequest::Command::kReload, true};
  in.canary_percent = 20;
  in.canary_window = std::chrono::milliseconds(90'000);
  std::string line = format_control_request(in);
  line.pop_back();
  auto out = parse_control_request(line);
  ASSERT_TRUE(out.ok()) << out.error().what();
  EXPECT_EQ(out->canary_percent, 20);
  EXPECT_EQ(out->canary_window.count(), 90'000);
}

TEST(ControlProtocol, RejectsMalformedRequestsWithAReason) {
  struct Case {
    const char* line;
    const char* reason;
  } cases[] = {
      {"", "not a JSON object"},
      {"reload", "not a JSON object"},
      {"[1,2]", "not a JSON object"},
      {R"({"command":"reload"})", "no protocol version"},
      {R"({"baton":"1","command":"reload"})", "no protocol version"},
      {R"({"baton":2,"command":"reload"})", "unsupported protocol version 2"},
      {R"({"baton":1})", "no command"},
      {R"({"baton":1,"command":7})", "no command"},
      {R"({"baton":1,"command":"explode"})", "unknown command 'explode'"},
      {R"({"baton":1,"command":"reload","wait":"yes"})", "must be true or false"},
      {R"({"baton":1,"command":"status","canary":{"percent":5,"window_ms":9}})", "for a reload"},
      {R"({"baton":1,"command":"reload","canary":5})", "must be {"},
      {R"({"baton":1,"command":"reload","canary":{"percent":5}})", "must be {"},
      {R"({"baton":1,"command":"reload","canary":{"percent":0,"window_ms":9}})", "1-99"},
      {R"({"baton":1,"command":"reload","canary":{"percent":100,"window_ms":9}})", "1-99"},
      {R"({"baton":1,"command":"reload","canary":{"percent":5,"window_ms":0}})", "1 ms to 24 h"},
      {R"({"baton":1,"command":"reload","canary":{"percent":5,"window_ms":86400001}})",
       "1 ms to 24 h"},
  };
  for (const auto& c : cases) {
    auto r = parse_control_request(c.line);
    ASSERT_FALSE(r.ok()) << c.line;
    EXPECT_NE(r.error().what().find(c.reason), std::string::npos)
        << c.line << " -> " << r.error().what();
  }
}

// Found by fuzz/control_request_fuzz.cc: the unknown command was cut at 64 bytes inside a UTF-8
// character, and the error reply then failed to serialise.
TEST(ControlProtocol, UnknownCommandReplyStaysValidUtf8) {
  std::string command = "a";
  for (int i = 0; i < 40; ++i) command += "\u00e9";  // two bytes each in UTF-8
  auto r = parse_control_request(R"({"baton":1,"command":")" + command + "\"}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().what().find("unknown command 'a"), std::string::npos) << r.error().what();
  EXPECT_NO_THROW((void)control_error(r.error().what()).dump());
}

// A fake supervisor of another uid at the control path is not believed, whatever it answers.
TEST(ControlProtocol, ClientRefusesAControlSocketOfAnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  test::TempDir dir;
  const std::string path = dir.file("control.sock");
  Fd listener = test::bind_unix(path, SOCK_STREAM);
  ASSERT_TRUE(listener.valid());
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // SO_PEERCRED of a listening socket is fixed at listen(): listen as "nobody".
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0 ||
        ::listen(listener.get(), 4) != 0) {
      std::_Exit(10);
    }
    (void)!::write(ready[1], "x", 1);
    Fd c(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    std::string fake = control_ok("stopping: draining every generation").dump() + "\n";
    (void)!::send(c.get(), fake.data(), fake.size(), MSG_NOSIGNAL);
    std::_Exit(0);
  }
  ::close(ready[1]);
  char x;
  ASSERT_EQ(::read(ready[0], &x, 1), 1);
  ::close(ready[0]);
  auto reply = control_call(path, {ControlRequest::Command::kStop, false}, std::chrono::seconds(5));
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_FALSE(reply.ok()) << reply->dump();
  EXPECT_NE(reply.error().what().find("served by uid 65534"), std::string::npos)
      << reply.error().what();
}

TEST(ControlProtocol, StatusTextIsEscapedForTheTerminal) {
  EXPECT_EQ(escape_control_chars("Serving 12 clients"), "Serving 12 clients");
  EXPECT_EQ(escape_control_chars("\x1b[31mred\x07\n"), "\\x1b[31mred\\x07\\x0a");
  EXPECT_EQ(escape_control_chars("csi \xc2\x9b"
                                 "2J"),
            "csi \\u009b2J");
  EXPECT_EQ(escape_control_chars("caf\xc3\xa9 a\\b"), "caf\xc3\xa9 a\\\\b");
  EXPECT_EQ(escape_control_chars(std::string("nul\0", 4)), "nul\\x00");
}

TEST(Readiness, ParsesEveryKind) {
  EXPECT_EQ(parse_readiness("notify")->kind, ReadinessSpec::Kind::kNotify);
  auto http = parse_readiness("http:/healthz?full=1");
  ASSERT_TRUE(http.ok());
  EXPECT_EQ(http->argument, "/healthz?full=1");
  EXPECT_EQ(http->to_string(), "http:/healthz?full=1");
  auto exec = parse_readiness("exec:curl -fs localhost:8080/ready");
  ASSERT_TRUE(exec.ok());
  EXPECT_EQ(exec->argument, "curl -fs localhost:8080/ready");
  auto delay = parse_readiness("delay:2.5");
  ASSERT_TRUE(delay.ok());
  EXPECT_EQ(delay->delay, std::chrono::milliseconds(2500));
  EXPECT_EQ(delay->to_string(), "delay:2.5");
}

TEST(Readiness, ProbeRetryIsSoonForACheapCheckEarlyInTheStart) {
  using std::chrono::microseconds;
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  // Nothing costs less than the floor, even at once and for a free check.
  EXPECT_EQ(probe_retry_delay(seconds(0), microseconds(0)), kProbeRetryMin);
  EXPECT_EQ(probe_retry_delay(milliseconds(100), microseconds(50)), kProbeRetryMin);
  // A check that costs 1 ms, 1 s into the start: three times its cost.
  EXPECT_EQ(probe_retry_delay(seconds(1), milliseconds(1)), milliseconds(3));
  // A cheap check 1 s into the start: the age rule (1/512 of it).
  EXPECT_EQ(probe_retry_delay(seconds(1), microseconds(10)),
            std::chrono::nanoseconds(seconds(1)) / kProbeAgeDivisor);
}

TEST(Readiness, TheAcceptProbeLooksSoonerThanTheFloorWhileItsLooksStayCheap) {
  using std::chrono::microseconds;
  using std::chrono::milliseconds;
  EXPECT_LT(kAcceptProbeRetryMin, kProbeRetryMin);
  EXPECT_EQ(probe_retry_delay(milliseconds(0), microseconds(20), kAcceptProbeRetryMin),
            kAcceptProbeRetryMin);
  // A look that got slow (a loaded machine) still waits three times its cost.
  EXPECT_EQ(probe_retry_delay(milliseconds(0), microseconds(100), kAcceptProbeRetryMin),
            microseconds(300));
  // Past ~100 ms of start-up the age rule takes over, as for any probe.
  EXPECT_EQ(probe_retry_delay(milliseconds(512), microseconds(20), kAcceptProbeRetryMin),
            milliseconds(1));
}

TEST(Readiness, ProbeRetryBacksOffForACostlyCheckAndALongStart) {
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  // A check that costs 30 ms waits 90 ms: checks take at most a quarter of a CPU.
  EXPECT_EQ(probe_retry_delay(milliseconds(10), milliseconds(30)), milliseconds(90));
  // 10 s into the start a cheap check is looked at every ~20 ms, not every millisecond.
  EXPECT_EQ(probe_retry_delay(seconds(10), milliseconds(0)),
            std::chrono::nanoseconds(seconds(10)) / kProbeAgeDivisor);
  // Never more than kProbeRetry, however slow the check or long the start.
  EXPECT_EQ(probe_retry_delay(seconds(0), seconds(5)), kProbeRetry);
  EXPECT_EQ(probe_retry_delay(seconds(3600), milliseconds(1)), kProbeRetry);
  // A clock that went nowhere (or a negative reading) is the floor, not a busy loop.
  EXPECT_EQ(probe_retry_delay(seconds(-1), milliseconds(-1)), kProbeRetryMin);
}

TEST(Readiness, AutoIsTheDefaultAndAcceptIsAKind) {
  EXPECT_EQ(ReadinessSpec{}.kind, ReadinessSpec::Kind::kAuto);
  EXPECT_EQ(parse_readiness("auto")->kind, ReadinessSpec::Kind::kAuto);
  EXPECT_EQ(parse_readiness("accept")->kind, ReadinessSpec::Kind::kAccept);
  EXPECT_EQ(parse_readiness("accept")->to_string(), "accept");
  EXPECT_EQ(ReadinessSpec{}.to_string(), "auto");
}

TEST(Readiness, AutoHoldsAnAppThatSpeaksNotifyToReadyAndAnAccept) {
  const ReadinessSpec automatic = parse_readiness("auto").value();
  // An app that speaks no sd_notify: the accept proves it.
  EXPECT_TRUE(proven_ready(automatic, {.probing = true, .accepted = true}));
  EXPECT_FALSE(proven_ready(automatic, {.probing = true}));
  // One that does: READY=1 and the accept, in either order; neither alone.
  EXPECT_FALSE(proven_ready(automatic, {.spoke_notify = true, .probing = true, .accepted = true}));
  EXPECT_FALSE(
      proven_ready(automatic, {.spoke_notify = true, .said_ready = true, .probing = true}));
  EXPECT_TRUE(proven_ready(automatic, {true, true, true, true}));
  // Nothing to probe (no steered TCP listener): READY=1 alone.
  EXPECT_TRUE(proven_ready(automatic, {.spoke_notify = true, .said_ready = true}));
  EXPECT_FALSE(proven_ready(automatic, {.spoke_notify = true}));

  const ReadinessSpec accept = parse_readiness("accept").value();
  EXPECT_TRUE(proven_ready(accept, {.spoke_notify = true, .probing = true, .accepted = true}));
  EXPECT_FALSE(proven_ready(accept, {.spoke_notify = true, .said_ready = true, .probing = true}));
  const ReadinessSpec notify = parse_readiness("notify").value();
  EXPECT_TRUE(proven_ready(notify, {.spoke_notify = true, .said_ready = true, .probing = true}));
  EXPECT_FALSE(proven_ready(notify, {.probing = true, .accepted = true}));
  for (const char* other : {"http:/", "exec:true", "delay:1"}) {
    EXPECT_FALSE(proven_ready(parse_readiness(other).value(), {true, true, true, true})) << other;
  }
}

TEST(Readiness, RejectsBadSpecs) {
  for (const char* bad :
       {"", "ready", "http:", "http:healthz", "http:/a b", "exec:", "delay:", "delay:-1",
        "delay:abc", "delay:1e9", "delay:nan", "notify:x", "accept:x", "Auto"}) {
    auto r = parse_readiness(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.error().what().find("bad --ready"), std::string::npos);
    }
  }
}

TEST(Readiness, HttpVerdictNeedsAStatusLine) {
  EXPECT_EQ(http_status_of("HTTP/1.1 200 OK\r\n"), 200);
  EXPECT_EQ(http_status_of("HTTP/1.0 204 No Content\r\n"), 204);
  EXPECT_EQ(http_status_of("HTTP/1.1 503 Unavailable\r\n"), 503);
  EXPECT_EQ(http_status_of("HTTP/1.1 2"), 0);
  EXPECT_EQ(http_status_of("SSH-2.0-OpenSSH\r\n"), 0);
  EXPECT_EQ(http_status_of("HTTP/1.1 xyz\r\n"), 0);
  EXPECT_EQ(http_status_of("HTTP/1.1 -12 x\r\n"), 0);  // from_chars alone reads -12
  EXPECT_EQ(http_status_of("HTTP/1.1 +20 x\r\n"), 0);
  EXPECT_EQ(http_status_of("HTTP/1.1 002 OK"), 0);  // found by the http_status fuzz target
  EXPECT_NE(http_probe_request("/healthz").find("GET /healthz HTTP/1.1\r\n"), std::string::npos);
}

TEST(Notify, ParsesTheKeysBatonReads) {
  auto m = parse_notify("READY=1\nSTATUS=Serving 12 clients\nMAINPID=42\nX-UNKNOWN=1");
  EXPECT_TRUE(m.ready);
  EXPECT_FALSE(m.stopping);
  ASSERT_TRUE(m.status.has_value());
  EXPECT_EQ(*m.status, "Serving 12 clients");
  EXPECT_TRUE(parse_notify("STOPPING=1").stopping);
  EXPECT_FALSE(parse_notify("READY=0").ready);
  EXPECT_FALSE(parse_notify("READY=10").ready);
  EXPECT_FALSE(parse_notify("XREADY=1").ready);
  EXPECT_FALSE(parse_notify("").ready);
}

}  // namespace
}  // namespace baton

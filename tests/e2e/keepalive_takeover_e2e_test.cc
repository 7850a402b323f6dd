// Keep-alive takeover, end to end (docs/drain.md): an old generation's idle keep-alive connections
// are never closed under their clients. Counted the way the strictest client counts: no retry.
// Apps that drain gracefully and apps that die on SIGTERM, our own keep-alive clients, wrk, and
// nginx in front with upstream keep-alive (where a closed upstream connection is a 502 for a POST).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <fstream>
#include <memory>
#include <optional>

#include "adopt_support.h"
#include "baton_run.h"
#include "harness.h"
#include "http_connection.h"
#include "load_client.h"

namespace baton::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string plainapp_binary() { return BATON_TEST_PLAINAPP_BIN; }

struct AppKind {
  std::string name;
  std::vector<std::string> extra;  // plainapp's arguments
};

void PrintTo(const AppKind& kind, std::ostream* os) { *os << kind.name; }

std::vector<AppKind> app_kinds() {
  return {{"dies_on_sigterm", {}}, {"drains_gracefully", {"--graceful"}}};
}

std::vector<std::string> app_argv(const AppKind& kind) {
  std::vector<std::string> argv = {plainapp_binary(), "--init-ms", "100"};
  argv.insert(argv.end(), kind.extra.begin(), kind.extra.end());
  return argv;
}

constexpr const char* kShared = "baton run shares its listeners here: nothing to take over";

// `baton run --adopt RUN_ARGS --listen 127.0.0.1:PORT -- SERVER APP_ARGS`: the runtime's server
// binds PORT itself, reserved until baton has bound it so that nobody else takes it.
struct Adopted {
  std::string address;           // 127.0.0.1:PORT
  std::vector<std::string> app;  // the server's argv
  std::unique_ptr<Baton> baton;
  bool serving = false;  // within 60 s
};

Adopted run_adopted(const TempDir& dir, const adopt::Runtime& rt,
                    const std::vector<std::string>& run_args = {},
                    const std::vector<std::string>& app_args = {}) {
  adopt::ReservedPort reserved;
  Adopted a;
  a.address = "127.0.0.1:" + std::to_string(reserved.port());
  a.app = rt.argv(reserved.port(), "127.0.0.1");
  a.app.insert(a.app.end(), app_args.begin(), app_args.end());
  std::vector<std::string> args = {"--adopt"};
  args.insert(args.end(), run_args.begin(), run_args.end());
  args.insert(args.end(), {"--listen", a.address});
  a.baton = std::make_unique<Baton>(dir, args, a.app);
  a.serving = !a.baton->wait_address(60s).empty();
  return a;
}

class KeepAliveTakeover : public ::testing::TestWithParam<AppKind> {};

// 20 keep-alive clients that never retry, and wrk with keep-alive, across 10 reloads.
TEST_P(KeepAliveTakeover, ClientsThatNeverRetryLoseNothing) {
  TempDir dir;
  Baton baton(dir, {"--listen", "127.0.0.1:0", "--ready", "http:/healthz"}, app_argv(GetParam()));
  const std::string address = baton.wait_address();
  ASSERT_FALSE(address.empty()) << baton.process().output();
  if (!baton.steered()) GTEST_SKIP() << kShared;
  LoadClient load(parse_address(address).value(),
                  LoadOptions{.threads = 20, .keep_alive = true, .retry = false});
  Process wrk = Process::spawn(
      {"/usr/bin/wrk", "-t1", "-c8", "-d30s", "--timeout", "5s", "http://" + address + "/"});
  ASSERT_TRUE(load.wait_for_successes(500, 30s)) << baton.process().output();
  for (int i = 0; i < 10; ++i) {
    auto r = baton.ctl({"reload", "--wait"});
    ASSERT_EQ(r.exit_code, 0) << "reload " << i << ": " << r.output;
    ASSERT_TRUE(load.wait_for_successes(200, 30s)) << "reload " << i;
  }
  load.stop();
  ::kill(wrk.pid(), SIGINT);  // wrk prints its summary on SIGINT
  ASSERT_TRUE(wrk.wait(30s).has_value()) << "wrk did not end";
  const std::string wrk_out = wrk.output();
  std::printf("[ figures  ] %s: 10 reloads: %ld requests, %ld failed, %ld retried; wrk: %s\n",
              GetParam().name.c_str(), load.requests(), load.failed(), load.retried(),
              line_with(wrk_out, "requests in").c_str());
  EXPECT_THAT(load.failures(), ::testing::IsEmpty())
      << load.failed() << " of " << load.requests() << " failed\n"
      << baton.process().output();
  EXPECT_EQ(load.retried(), 0);
  EXPECT_THAT(wrk_out, HasSubstr("requests in")) << wrk_out;
  EXPECT_THAT(wrk_out, Not(HasSubstr("Socket errors"))) << wrk_out;
  EXPECT_THAT(wrk_out, Not(HasSubstr("Non-2xx"))) << wrk_out;
  auto s = baton.status();
  EXPECT_EQ(s["counters"]["reloads_ok"], 10);
  EXPECT_EQ(s["counters"]["drain_kills"], 0) << baton.process().output();
  EXPECT_GT(s["keepalive"]["taken_over"].get<int>(), 0) << s.dump();
  EXPECT_GT(s["keepalive"]["relayed"].get<int>(), 0) << s.dump();
  EXPECT_EQ(s["keepalive"]["refused"], 0) << s.dump();
}

// nginx in front, with upstream keep-alive as production runs it: a POST on an upstream
// connection the server closes is answered 502, since nginx retries only idempotent requests.
TEST_P(KeepAliveTakeover, NginxWithUpstreamKeepAliveAnswersNoPostWith502) {
  const std::string nginx = "/usr/sbin/nginx";
  if (::access(nginx.c_str(), X_OK) != 0) GTEST_SKIP() << "nginx is not installed";
  TempDir dir;
  Baton baton(dir, {"--listen", "127.0.0.1:0", "--ready", "http:/healthz"}, app_argv(GetParam()));
  const std::string upstream = baton.wait_address();
  ASSERT_FALSE(upstream.empty()) << baton.process().output();
  if (!baton.steered()) GTEST_SKIP() << kShared;
  adopt::ReservedPort front;
  const std::string front_address = "127.0.0.1:" + std::to_string(front.port());
  const std::string d = dir.path();
  {
    std::ofstream conf(dir.file("nginx.conf"));
    conf << (::geteuid() == 0 ? "user root;\n" : "") << "worker_processes 1;\n"
         << "error_log " << d << "/error.log;\npid " << d << "/nginx.pid;\n"
         << "events { worker_connections 512; }\n"
         << "http {\n  access_log off;\n"
         << "  client_body_temp_path " << d << "/body;\n  proxy_temp_path " << d << "/proxy;\n"
         << "  fastcgi_temp_path " << d << "/fcgi;\n  uwsgi_temp_path " << d << "/uwsgi;\n"
         << "  scgi_temp_path " << d << "/scgi;\n"
         << "  upstream app { server " << upstream << "; keepalive 16; }\n"
         << "  server {\n    listen " << front_address << ";\n"
         << "    location / { proxy_pass http://app; proxy_http_version 1.1;\n"
         << "      proxy_set_header Connection \"\"; }\n  }\n}\n";
  }
  {
    std::ofstream lua(dir.file("post.lua"));
    lua << "wrk.method = \"POST\"\nwrk.body = \"item=42&note=takeover\"\n"
        << "wrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n";
  }
  front.release();
  Process proxy =
      Process::spawn({nginx, "-p", d, "-c", dir.file("nginx.conf"), "-g", "daemon off;"});
  const std::string url = "http://" + front_address + "/";
  ASSERT_TRUE(wait_until(
      [&] { return http_get(parse_address(front_address).value(), "/", 1s).ok(); }, 20s, 50ms))
      << proxy.output() << read_file(dir.file("error.log"));
  Process posts = Process::spawn(
      {"/usr/bin/wrk", "-t1", "-c8", "-d60s", "--timeout", "5s", "-s", dir.file("post.lua"), url});
  Process gets = Process::spawn({"/usr/bin/wrk", "-t1", "-c4", "-d60s", "--timeout", "5s", url});
  for (int i = 0; i < 10; ++i) {
    auto r = baton.ctl({"reload", "--wait"});
    ASSERT_EQ(r.exit_code, 0) << "reload " << i << ": " << r.output;
  }
  ::kill(posts.pid(), SIGINT);
  ::kill(gets.pid(), SIGINT);
  ASSERT_TRUE(posts.wait(30s).has_value());
  ASSERT_TRUE(gets.wait(30s).has_value());
  const std::string post_out = posts.output(), get_out = gets.output();
  const std::string errors = read_file(dir.file("error.log"));
  std::printf("[ figures  ] nginx, %s: POST %s; GET %s\n", GetParam().name.c_str(),
              line_with(post_out, "requests in").c_str(),
              line_with(get_out, "requests in").c_str());
  for (const auto* out : {&post_out, &get_out}) {
    EXPECT_THAT(*out, HasSubstr("requests in")) << *out;
    EXPECT_THAT(*out, Not(HasSubstr("Non-2xx"))) << *out << errors;
    EXPECT_THAT(*out, Not(HasSubstr("Socket errors"))) << *out << errors;
  }
  EXPECT_THAT(errors, Not(HasSubstr("prematurely closed"))) << errors;
  ::kill(proxy.pid(), SIGQUIT);
  EXPECT_TRUE(proxy.wait(30s).has_value());
}

INSTANTIATE_TEST_SUITE_P(Apps, KeepAliveTakeover, ::testing::ValuesIn(app_kinds()),
                         [](const auto& info) { return info.param.name; });

// A taken-over connection's next request is relayed with "Connection: close": the serving
// generation answers it and ends the connection, and the client's next connection goes to it
// straight, so the relay's hop lasts one request, not the connection's life.
TEST(KeepAliveTakeoverOne, ARelayedRequestEndsItsConnectionSoTheClientReconnectsDirect) {
  TempDir dir;
  Baton baton(dir, {"--listen", "127.0.0.1:0", "--ready", "http:/healthz"},
              {plainapp_binary(), "--graceful"});
  const std::string address = baton.wait_address();
  ASSERT_FALSE(address.empty()) << baton.process().output();
  if (!baton.steered()) GTEST_SKIP() << kShared;
  std::optional<HttpConnection> client(std::in_place, parse_address(address).value());
  ASSERT_TRUE(client->send_raw("GET / HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n\r\n"));
  ASSERT_THAT(client->read_response(), HasSubstr("generation 1 "));
  auto r = baton.ctl({"reload", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(client->send_raw("GET / HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n\r\n"));
  const std::string response = client->read_response();
  EXPECT_THAT(response, HasSubstr("generation 2 ")) << baton.process().output();
  EXPECT_THAT(response, HasSubstr("Connection: close")) << response;
  EXPECT_TRUE(client->sees_end()) << "the app ended the relayed connection after its answer";
  client.reset();  // and the client closes its end, as clients do after "Connection: close"
  EXPECT_TRUE(wait_until([&] { return baton.status()["keepalive"]["held_now"] == 0; }, 10s))
      << baton.status().dump();
  // The client's next connection reaches generation 2 without baton in between.
  EXPECT_THAT(http_get(parse_address(address).value(), "/", 10s)->body, HasSubstr("generation 2 "));
  auto s = baton.status();
  EXPECT_EQ(s["keepalive"]["taken_over"], 1) << s.dump();
  EXPECT_EQ(s["keepalive"]["relayed"], 1) << s.dump();
}

// A request whose head is not all there when baton looks cannot be rewritten: it is relayed as
// sent, and that connection stays relayed. One such client connection, never reopened, across
// three generations: taken over from the first, relayed to the second, moved off the second when
// it drains, relayed to the third.
TEST(KeepAliveTakeoverOne, AConnectionRelayedAsSentSurvivesEveryLaterReloadWithOneHop) {
  TempDir dir;
  Baton baton(dir, {"--listen", "127.0.0.1:0", "--ready", "http:/healthz"},
              {plainapp_binary(), "--graceful"});
  const std::string address = baton.wait_address();
  ASSERT_FALSE(address.empty()) << baton.process().output();
  if (!baton.steered()) GTEST_SKIP() << kShared;
  HttpConnection client(parse_address(address).value());
  ASSERT_TRUE(client.connected());
  for (int generation = 1; generation <= 3; ++generation) {
    if (generation == 1) {
      ASSERT_TRUE(client.send_get("/"));
    } else {
      auto r = baton.ctl({"reload", "--wait"});
      ASSERT_EQ(r.exit_code, 0) << r.output;
      // The request line alone, until baton has judged it; then the rest of the head.
      ASSERT_TRUE(client.send_raw("GET / HTTP/1.1\r\n"));
      ASSERT_TRUE(
          wait_until([&] { return baton.status()["keepalive"]["relayed"] == generation - 1; }, 30s))
          << baton.status().dump();
      ASSERT_TRUE(client.send_raw("Host: t\r\n\r\n"));
    }
    const std::string response = client.read_response();
    EXPECT_THAT(response, HasSubstr("generation " + std::to_string(generation) + " "))
        << response << baton.process().output();
    EXPECT_THAT(response, Not(HasSubstr("Connection: close"))) << response;
  }
  auto s = baton.status();
  EXPECT_EQ(s["keepalive"]["taken_over"], 1) << s.dump();
  EXPECT_EQ(s["keepalive"]["relayed"], 2) << s.dump();
  EXPECT_EQ(s["keepalive"]["detached"], 1) << s.dump();
  EXPECT_EQ(s["keepalive"]["held_now"], 1) << s.dump();
  EXPECT_THAT(baton.process().output(), HasSubstr("moved 1 relayed one"));
}

// A taken-over connection whose client then speaks TLS (or anything not HTTP/1.x) is closed, not
// relayed, and counted; baton goes on.
TEST(KeepAliveTakeoverOne, ATlsRecordOnATakenOverConnectionIsNeverRelayed) {
  TempDir dir;
  Baton baton(dir, {"--listen", "127.0.0.1:0", "--ready", "http:/healthz"}, {plainapp_binary()});
  const std::string address = baton.wait_address();
  ASSERT_FALSE(address.empty()) << baton.process().output();
  if (!baton.steered()) GTEST_SKIP() << kShared;
  HttpConnection client(parse_address(address).value());
  ASSERT_TRUE(client.send_get("/"));
  ASSERT_THAT(client.read_response(), HasSubstr("generation 1 "));
  auto r = baton.ctl({"reload", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // A TLS ClientHello's record header: content type 22, version 3.1.
  ASSERT_TRUE(client.send_raw(std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11)));
  EXPECT_TRUE(client.sees_end()) << baton.process().output();
  auto s = baton.status();
  EXPECT_EQ(s["keepalive"]["taken_over"], 1) << s.dump();
  EXPECT_EQ(s["keepalive"]["refused"], 1) << s.dump();
  EXPECT_EQ(s["keepalive"]["relayed"], 0) << s.dump();
  EXPECT_THAT(baton.process().output(), HasSubstr("closed, not relayed"));
  // Still serving.
  EXPECT_TRUE(http_get(parse_address(address).value(), "/", 10s).ok());
}

// A real TLS server (Python's ssl module, keep-alive HTTPS, under --adopt) across a reload: the
// idle connection is taken over like any other, and when its client goes on in TLS it is closed
// and counted, never relayed; baton goes on, and so do new TLS connections.
TEST(KeepAliveTakeoverOne, ATlsServersConnectionIsClosedAndCountedNeverRelayed) {
  const adopt::Runtime rt = adopt::python_runtime();
  if (!rt.missing.empty()) GTEST_SKIP() << rt.missing;
  TempDir dir;
  const std::string pem = dir.file("tls.pem");
  auto made = run({"/usr/bin/env", "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", pem, "-out",
                   dir.file("cert.pem"), "-subj", "/CN=localhost", "-days", "1"});
  if (made.exit_code == 127) GTEST_SKIP() << "no openssl: " << made.output;
  ASSERT_EQ(made.exit_code, 0) << made.output;
  std::ofstream(pem, std::ios::app) << std::ifstream(dir.file("cert.pem")).rdbuf();
  // The adopt library's own readiness probe speaks plain HTTP: an accept proves this server.
  Adopted adopted = run_adopted(dir, rt, {"--ready", "accept"}, {"--tls", pem});
  ASSERT_TRUE(adopted.serving) << adopted.baton->process().output();
  Baton& baton = *adopted.baton;
  if (!baton.steered()) GTEST_SKIP() << kShared;
  const std::string port = adopted.address.substr(adopted.address.rfind(':') + 1);
  const std::string python = adopted.app.front(), client_py = adopt::app_path("tls_client.py");
  const std::string release = dir.file("release");
  Process client = Process::spawn({python, client_py, port, release});
  ASSERT_TRUE(client.wait_for_output("first 200", 60s))
      << client.output() << baton.process().output();
  auto r = baton.ctl({"reload", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output << baton.process().output();
  std::ofstream(release).flush();
  ASSERT_TRUE(client.wait_exit_code(60s).has_value()) << client.output();
  std::printf("[ figures  ] a TLS keep-alive client's request after the reload: %s\n",
              line_with(client.output(), "second").c_str());
  auto s = baton.status();
  EXPECT_EQ(s["keepalive"]["taken_over"], 1) << s.dump();
  EXPECT_EQ(s["keepalive"]["refused"], 1) << s.dump();
  EXPECT_EQ(s["keepalive"]["relayed"], 0) << s.dump();
  EXPECT_THAT(baton.process().output(), HasSubstr("closed, not relayed"));
  // A new TLS connection: two requests, answered by the new generation.
  Process again = Process::spawn({python, client_py, port, release});
  EXPECT_EQ(again.wait_exit_code(60s), 0) << again.output();
  EXPECT_THAT(again.output(), HasSubstr("second 200"))
      << again.output() << baton.process().output();
  // baton knows now that this port speaks TLS: at the next drain its idle connection is closed,
  // as before takeover (a FIN while it is idle), not taken over.
  const std::string release2 = dir.file("release2");
  Process third = Process::spawn({python, client_py, port, release2});
  ASSERT_TRUE(third.wait_for_output("first 200", 60s)) << third.output();
  r = baton.ctl({"reload", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output << baton.process().output();
  std::ofstream(release2).flush();
  ASSERT_TRUE(third.wait_exit_code(60s).has_value()) << third.output();
  s = baton.status();
  EXPECT_EQ(s["keepalive"]["closed_at_drain"], 1) << s.dump();
  EXPECT_EQ(s["keepalive"]["taken_over"], 1) << s.dump();
  EXPECT_EQ(s["keepalive"]["refused"], 1) << s.dump();
  EXPECT_THAT(baton.process().output(), HasSubstr("speaks TLS, which baton cannot relay"));
}

// Apps that bind their own port, under --adopt. Node's http server shuts its write side when it
// reads end-of-file, which would send the client a FIN baton cannot take back; the adopt library
// leaves that write side open (preload.cc). One connection, so what Node does to it is seen.
TEST(KeepAliveTakeoverOne, NodeUnderAdoptSendsNoFinOnAConnectionBatonKeeps) {
  const adopt::Runtime rt = adopt::node_runtime();
  if (!rt.missing.empty()) GTEST_SKIP() << rt.missing;
  TempDir dir;
  Adopted adopted = run_adopted(dir, rt);
  ASSERT_TRUE(adopted.serving) << adopted.baton->process().output();
  Baton& baton = *adopted.baton;
  const std::string& address = adopted.address;
  if (!baton.steered()) GTEST_SKIP() << kShared;
  HttpConnection client(parse_address(address).value());
  ASSERT_TRUE(client.send_get("/"));
  const std::string first = client.read_response();
  ASSERT_THAT(first, HasSubstr("node pid="));
  auto r = baton.ctl({"reload", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output << baton.process().output();
  EXPECT_FALSE(client.sees_close(300ms)) << "Node's FIN reached the client";
  ASSERT_TRUE(client.send_get("/"));
  const std::string second = client.read_response();
  EXPECT_THAT(second, HasSubstr("node pid=")) << baton.process().output();
  EXPECT_NE(first.substr(first.find("pid=")), second.substr(second.find("pid=")))
      << "answered by the new generation";
  EXPECT_EQ(baton.status()["keepalive"]["relayed"], 1);
}

// Python's http.server under --adopt ends an HTTP/1.0 response with its connection, and baton
// takes that connection over between the response and its end (the app ends it when the takeover
// makes it readable). The app read no end-of-file from it, so its shutdown(SHUT_WR) goes through:
// the client sees the end from the app, not 1 s later from baton.
TEST(KeepAliveTakeoverOne, AResponseEndedByItsConnectionEndsWithTheAppsFinUnderAdopt) {
  const adopt::Runtime rt = adopt::python_runtime();
  if (!rt.missing.empty()) GTEST_SKIP() << rt.missing;
  TempDir dir;
  Adopted adopted = run_adopted(dir, rt);
  ASSERT_TRUE(adopted.serving) << adopted.baton->process().output();
  Baton& baton = *adopted.baton;
  const std::string& address = adopted.address;
  if (!baton.steered()) GTEST_SKIP() << kShared;
  std::optional<HttpConnection> client(std::in_place, parse_address(address).value());
  ASSERT_TRUE(client->send_raw("GET /then-close HTTP/1.0\r\n\r\n"));
  ASSERT_THAT(client->read_response(), HasSubstr("200 OK"));
  auto r = baton.ctl({"reload", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output << baton.process().output();
  EXPECT_TRUE(client->reads_to_end(60s)) << baton.process().output();
  client.reset();
  auto s = baton.status();
  EXPECT_EQ(s["keepalive"]["taken_over"], 1) << "the test took nothing over\n" << s.dump();
  EXPECT_EQ(s["keepalive"]["idle_closed"], 0) << "baton, not the app, ended the connection\n"
                                              << baton.process().output();
}

// A JVM app under --adopt, with keep-alive clients that never retry.
TEST(KeepAliveTakeoverOne, JvmAppUnderAdoptLosesNoKeepAliveRequest) {
  const adopt::Runtime rt = adopt::java_runtime();
  if (!rt.missing.empty()) GTEST_SKIP() << rt.missing;
  TempDir dir;
  Adopted adopted = run_adopted(dir, rt);
  ASSERT_TRUE(adopted.serving) << adopted.baton->process().output();
  Baton& baton = *adopted.baton;
  const std::string& address = adopted.address;
  if (!baton.steered()) GTEST_SKIP() << kShared;
  LoadClient load(parse_address(address).value(),
                  LoadOptions{.threads = 16, .keep_alive = true, .retry = false});
  ASSERT_TRUE(load.wait_for_successes(200, 60s)) << baton.process().output();
  for (int i = 0; i < 6; ++i) {
    auto r = baton.ctl({"reload", "--wait"});
    ASSERT_EQ(r.exit_code, 0) << "reload " << i << ": " << r.output << baton.process().output();
    ASSERT_TRUE(load.wait_for_successes(500, 60s)) << "reload " << i;
  }
  load.stop();
  std::printf("[ figures  ] java under --adopt: 6 reloads: %ld requests, %ld failed, %ld retried\n",
              load.requests(), load.failed(), load.retried());
  EXPECT_THAT(load.failures(), ::testing::IsEmpty())
      << load.failed() << " of " << load.requests() << " failed\n"
      << baton.process().output();
  EXPECT_GT(baton.status()["keepalive"]["taken_over"].get<int>(), 0);
}

}  // namespace
}  // namespace baton::test

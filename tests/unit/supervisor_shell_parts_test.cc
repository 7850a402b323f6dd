// Pure parts of the supervisor's shell: the environment a generation is told its sockets in, and
// the hint given when it never became ready.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "supervisor/failure_hint.h"
#include "supervisor/generation_env.h"

namespace baton {
namespace {

using Env = std::map<std::string, std::string>;

OwnedListener listener(const std::string& name, const std::string& spec) {
  OwnedListener l;
  l.name = name;
  auto a = parse_address(spec);
  EXPECT_TRUE(a.ok()) << spec;
  l.address = *a;
  return l;
}

TEST(GenerationEnv, ListenersInOrderThenTheProbeListener) {
  std::vector<OwnedListener> ls;
  ls.push_back(listener("http", "127.0.0.1:8080"));
  ls.push_back(listener("dns", "udp:127.0.0.1:5353"));
  ls.push_back(listener("admin", "unix:/run/app.sock"));
  // The whole map is compared: a variable missing (or one too many) fails, where reading
  // env["KEY"] would create the entry it checks.
  EXPECT_EQ(listen_env(ls, true),
            (Env{{"LISTEN_FDS", "4"},
                 {"LISTEN_FDNAMES", "http:dns:admin:baton-probe"},
                 // Server::Starter has no UDP: left out, the others keep their own fd numbers.
                 {"SERVER_STARTER_PORT", "127.0.0.1:8080=3;/run/app.sock=5"}}));
}

TEST(GenerationEnv, NoListenersNoProbe) {
  // Each variable is still there, empty.
  EXPECT_EQ(listen_env({}, false),
            (Env{{"LISTEN_FDS", "0"}, {"LISTEN_FDNAMES", ""}, {"SERVER_STARTER_PORT", ""}}));
}

TEST(FailureHint, AutoReadinessSaysWhatTheAppDidNotDo) {
  HintFacts f;
  f.auto_readiness = true;
  f.probing = true;
  EXPECT_EQ(failure_hint(f), "it neither sent READY=1 nor accepted baton's probe connection");
  f.spoke_notify = true;
  EXPECT_NE(failure_hint(f).find("held to READY=1"), std::string::npos);
  f.said_ready = true;  // a master that says READY=1 before anything of it can serve
  EXPECT_NE(failure_hint(f).find("sent READY=1 but accepted no connection"), std::string::npos);
  f.accepted = true;  // proven both ways, so it failed for another reason: no guess
  EXPECT_EQ(failure_hint(f), "");
  f.said_ready = f.accepted = false;
  f.spoke_notify = false;
  f.probing = false;
  EXPECT_NE(failure_hint(f).find("choose a --ready"), std::string::npos);
}

TEST(FailureHint, AdoptionSaysWhereItStopped) {
  HintFacts f;
  f.adopting = true;
  f.held = "127.0.0.1:8080";
  EXPECT_NE(failure_hint(f).find("did not load"), std::string::npos);
  f.adopt_loaded = true;
  EXPECT_EQ(failure_hint(f),
            "the app never bound an address baton holds (baton holds 127.0.0.1:8080)");
  f.adopted = true;
  EXPECT_EQ(failure_hint(f), "");
}

TEST(FailureHint, AnAppThatBindsTheHeldPortItselfIsToldOfAdopt) {
  HintFacts f;
  f.held = "127.0.0.1:8080";
  for (const char* said : {"OSError: [Errno 98] Address already in use\n",
                           "Error: listen EADDRINUSE: address already in use 127.0.0.1:8080\n",
                           "java.net.BindException: Address already in use\n"}) {
    const std::string hint = exit_hint(f, said);
    EXPECT_NE(hint.find("--adopt"), std::string::npos) << said;
    EXPECT_NE(hint.find("127.0.0.1:8080"), std::string::npos) << said;
  }
  EXPECT_EQ(exit_hint(f, "Traceback: ImportError: no module named app\n"), "");
  f.adopting = true;  // under --adopt the bind is handled; an app binding another port says so
  EXPECT_EQ(exit_hint(f, "OSError: [Errno 98] Address already in use\n"), "");
}

TEST(FailureHint, AMasterThatSaidReadyAndExitedIsNamed) {
  HintFacts f;
  f.auto_readiness = f.spoke_notify = f.said_ready = f.probing = true;
  EXPECT_NE(exit_hint(f, "[ERROR] Worker failed to boot.\n").find("sent READY=1 but accepted no"),
            std::string::npos);
  f.accepted = true;
  EXPECT_EQ(exit_hint(f, "[ERROR] Worker failed to boot.\n"), "");
}

TEST(FailureHint, AnExplicitCheckNeedsNoHint) { EXPECT_EQ(failure_hint(HintFacts{}), ""); }

}  // namespace
}  // namespace baton

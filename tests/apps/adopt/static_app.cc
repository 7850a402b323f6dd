// baton-adopt-static: a statically linked program (no dynamic loader, so no LD_PRELOAD), for the
// test that --adopt refuses it with a clear message. It prints whether it sees BATON_ADOPT.
#include <cstdio>
#include <cstdlib>

int main() {
  std::printf("static app, BATON_ADOPT=%s\n", std::getenv("BATON_ADOPT") ? "set" : "unset");
  return 0;
}
